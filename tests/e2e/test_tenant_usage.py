"""os-simple-tenant-usage: what a project's servers used in a window, from their
launch and delete times and their flavors; the project's own, every project's
for admins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.e2e.client import NS, eventually
from tests.e2e.projects import new_project


def _t(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f")


async def _usage(api, tenant, start, end=None, **kw):
    query = f"start={_t(start)}" + (f"&end={_t(end)}" if end else "")
    return await api.get(f"/os-simple-tenant-usage/{tenant}?{query}", **kw)


async def test_usage_grows_with_a_servers_life_and_stops_at_its_delete(cloud):
    api, _ = await new_project(cloud)
    before = datetime.now(UTC) - timedelta(minutes=1)
    r = await api.boot(name="metered", flavor="101")
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    await api.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")
    flavor = (await api.get("/flavors/101")).json["flavor"]

    # Up to tomorrow, as `openstack usage show` asks: a live server is charged up
    # to now, not to the window's end.
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    first = (await _usage(api, api.project_id, before, tomorrow)).json["tenant_usage"]
    (usage,) = first["server_usages"]
    assert (usage["instance_id"], usage["name"], usage["tenant_id"]) == (sid, "metered",
                                                                         api.project_id)
    assert (usage["vcpus"], usage["memory_mb"], usage["local_gb"], usage["flavor"]) == (
        flavor["vcpus"], flavor["ram"], flavor["disk"] + flavor["OS-FLV-EXT-DATA:ephemeral"],
        flavor["name"])
    assert usage["state"] == "active" and usage["ended_at"] is None
    assert 0 < usage["hours"] < 0.5
    assert first["total_hours"] == usage["hours"]
    assert first["total_vcpus_usage"] == usage["vcpus"] * usage["hours"]
    assert first["total_memory_mb_usage"] == usage["memory_mb"] * usage["hours"]

    async def grown():
        later = (await _usage(api, api.project_id, before, tomorrow)).json["tenant_usage"]
        return later if later["total_hours"] > first["total_hours"] else None
    later = await eventually(grown)
    assert later["server_usages"][0]["uptime"] >= usage["uptime"]

    # A window that ended before the launch holds nothing.
    empty = (await _usage(api, api.project_id, before - timedelta(days=2),
                          before - timedelta(days=1))).json["tenant_usage"]
    assert empty["total_hours"] == 0 and empty["server_usages"] == []

    assert (await api.delete(f"/servers/{sid}")).status == 204
    await api.wait_status(sid, lambda s: s is None)
    done = (await _usage(api, api.project_id, before)).json["tenant_usage"]
    (gone,) = done["server_usages"]
    assert gone["state"] == "terminated" and gone["ended_at"] is not None
    frozen = (await _usage(api, api.project_id, before)).json["tenant_usage"]
    assert frozen["total_hours"] == done["total_hours"]  # no longer grows


async def test_others_usage_is_for_admins(cloud, demo, alt):
    start = datetime.now(UTC) - timedelta(days=1)
    r = await _usage(demo, alt.project_id, start)
    assert r.status == 403
    assert (await demo.get("/os-simple-tenant-usage")).status == 403
    api, _ = await new_project(cloud)
    r = await api.boot(name="listed")
    await api.wait_status(r.json["server"]["id"], lambda s: s and s["status"] == "ACTIVE")
    admin = await cloud.login("admin", "admin", "admin")
    r = await admin.get(f"/os-simple-tenant-usage?start={_t(start)}&detailed=True")
    assert r.status == 200, r.raw
    mine = [u for u in r.json["tenant_usages"] if u["tenant_id"] == api.project_id]
    assert [s["name"] for u in mine for s in u["server_usages"]] == ["listed"]
    plain = (await admin.get(f"/os-simple-tenant-usage?start={_t(start)}")).json
    assert all("server_usages" not in u for u in plain["tenant_usages"])
    shown = await _usage(admin, api.project_id, start)
    assert shown.status == 200 and shown.json["tenant_usage"]["tenant_id"] == api.project_id


async def test_bad_windows_are_400(demo):
    for query in ("start=yesterday", "start=2014-13-01T00:00:00", "end=2014-01-01",
                  "start=2014-02-01T00:00:00&end=2014-01-01T00:00:00"):
        r = await demo.get(f"/os-simple-tenant-usage/{demo.project_id}?{query}")
        assert r.status == 400, (query, r.raw)
        assert r.json["badRequest"]["message"]


async def test_usage_in_xml(cloud):
    api, _ = await new_project(cloud)
    r = await api.boot(name="xml")
    await api.wait_status(r.json["server"]["id"], lambda s: s and s["status"] == "ACTIVE")
    start = datetime.now(UTC) - timedelta(days=1)
    r = await _usage(api, api.project_id, start, xml=True)
    assert r.status == 200 and r.xml.tag == f"{{{NS}}}tenant_usage"
    # Nova's template: every field a child element with text.
    assert r.xml.find(f"{{{NS}}}tenant_id").text == api.project_id
    total = float(r.xml.find(f"{{{NS}}}total_hours").text)
    hours = [float(u.find(f"{{{NS}}}hours").text) for u in
             r.xml.find(f"{{{NS}}}server_usages").findall(f"{{{NS}}}server_usage")]
    assert hours and abs(total - sum(hours)) < 0.01
