"""Limits (4.4.1.4, 4.4.12), quotas on create (3.8.1), rate limits (3.8.2) and the
management commands that set them, over HTTP with every service running.

Each test that changes limits works in a project of its own, made with the
management command, so that the demo project keeps the defaults the other
tests rely on.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from lxml import etree

from services.api.quotas import DEFAULT_LIMITS
from tests.e2e.client import Api, Cloud, eventually
from tests.e2e.projects import delete_all, manage, new_project

COMMON = "http://docs.openstack.org/common/api/v1.0"
USED_NS = "http://docs.openstack.org/compute/ext/used_limits/api/v1.1"
USED_KEYS = {"totalRAMUsed", "totalInstancesUsed", "totalCoresUsed", "totalFloatingIpsUsed",
             "totalSecurityGroupsUsed", "totalVolumesUsed", "totalVolumeGigabytesUsed"}


async def test_limits_json_with_used_values_that_follow_boots(cloud):
    api, _ = await new_project(cloud)
    r = await api.get("/limits")
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
    limits = r.json["limits"]
    assert list(limits) == ["rate", "absolute"]
    absolute = limits["absolute"]
    assert set(absolute) == set(DEFAULT_LIMITS) | USED_KEYS
    # The values of the spec's example (the contract's defaults).
    assert {k: absolute[k] for k in DEFAULT_LIMITS} == {
        "maxServerMeta": 50, "maxPersonality": 5, "maxImageMeta": 50,
        "maxPersonalitySize": 10240, "maxSecurityGroupRules": 20, "maxTotalKeypairs": 100,
        "maxSecurityGroups": 10, "maxTotalCores": -1, "maxTotalFloatingIps": 10,
        "maxTotalInstances": 40, "maxTotalRAMSize": 15360,
        "maxTotalVolumes": 10, "maxTotalVolumeGigabytes": 1000}
    assert absolute["totalInstancesUsed"] == absolute["totalCoresUsed"] == 0
    assert absolute["totalRAMUsed"] == absolute["totalFloatingIpsUsed"] == 0

    small = await api.boot(name="used-1", flavor="100")      # 1024 MB, 1 vCPU
    medium = await api.boot(name="used-2", flavor="101")     # 2048 MB, 2 vCPUs
    assert small.status == medium.status == 202
    absolute = (await api.get("/limits")).json["limits"]["absolute"]
    assert (absolute["totalInstancesUsed"], absolute["totalCoresUsed"],
            absolute["totalRAMUsed"]) == (2, 3, 3072)
    sid = small.json["server"]["id"]
    await api.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")
    # The network service made the project's default security group on first use.
    assert (await api.get("/limits")).json["limits"]["absolute"]["totalSecurityGroupsUsed"] >= 1

    await api.delete(f"/servers/{sid}")
    await api.wait_status(sid, lambda s: s is None)
    absolute = (await api.get("/limits")).json["limits"]["absolute"]
    assert (absolute["totalInstancesUsed"], absolute["totalCoresUsed"],
            absolute["totalRAMUsed"]) == (1, 2, 2048)
    await delete_all(api)


async def test_limits_rate_list_in_novas_shape(cloud):
    api, _ = await new_project(cloud)
    rate = (await api.get("/limits")).json["limits"]["rate"]
    by_uri = {(entry["uri"], entry["regex"]): entry["limit"] for entry in rate}
    post = next(lim for lim in by_uri[("*", ".*")] if lim["verb"] == "POST")
    assert post["value"] == post["remaining"] == 300 and post["unit"] == "MINUTE"
    available = datetime.strptime(post["next-available"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(available.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(minutes=1)
    assert {lim["verb"] for lim in by_uri[("*", ".*")]} == {"POST", "PUT", "DELETE"}
    assert by_uri[("*changes-since*", ".*changes-since.*")][0]["verb"] == "GET"
    creates = next(lims for (uri, _), lims in by_uri.items() if uri == "*/servers")
    assert creates[0]["value"] == 1000 and creates[0]["unit"] == "DAY"

    await api.boot(name="counted")
    rate = (await api.get("/limits")).json["limits"]["rate"]
    post = next(lim for entry in rate if entry["uri"] == "*" for lim in entry["limit"]
                if lim["verb"] == "POST")
    assert post["remaining"] == 299
    await delete_all(api)


async def test_limits_xml_as_the_spec_shows(cloud):
    api, _ = await new_project(cloud)
    r = await api.boot(name="xml-used", flavor="101")
    assert r.status == 202
    for path, kw in (("/limits.xml", {}), ("/limits", {"xml": True})):
        r = await api.get(path, **kw)
        assert r.status == 200 and r.headers["Content-Type"].startswith("application/xml")
        root = r.xml
        assert root.tag == f"{{{COMMON}}}limits"
        assert root.nsmap["os-used-limits"] == USED_NS
        assert [etree.QName(c).localname for c in root] == ["rates", "absolute"]
        values = {e.get("name"): e.get("value")
                  for e in root.find(f"{{{COMMON}}}absolute").iter(f"{{{COMMON}}}limit")}
        assert values["maxTotalInstances"] == "40" and values["maxTotalCores"] == "-1"
        assert values["totalInstancesUsed"] == "1" and values["totalRAMUsed"] == "2048"
        assert values["totalCoresUsed"] == "2" and values["totalFloatingIpsUsed"] == "0"
        rates = root.find(f"{{{COMMON}}}rates").findall(f"{{{COMMON}}}rate")
        star = next(rate for rate in rates if rate.get("uri") == "*")
        assert star.get("regex") == ".*"
        post = next(lim for lim in star if lim.get("verb") == "POST")
        assert post.get("value") == "300" and post.get("unit") == "MINUTE"
        assert post.get("remaining") == "299" and post.get("next-available").endswith("Z")
    await delete_all(api)


async def _concurrent_creates(api: Api, flavor: str, n: int = 20) -> tuple[list[int], list]:
    rs = await asyncio.gather(*(api.boot(name=f"race-{i}", flavor=flavor) for i in range(n)))
    return [r.status for r in rs], rs


async def _live_servers(cloud: Cloud, project_id: str) -> int:
    conn = await cloud.db()
    try:
        return await conn.fetchval("SELECT count(*) FROM servers WHERE project_id = $1 "
                                   "AND deleted_at IS NULL", project_id)
    finally:
        await conn.close()


async def test_concurrent_creates_never_pass_max_total_instances(cloud):
    api, _ = await new_project(cloud, maxTotalInstances=5)
    statuses, rs = await _concurrent_creates(api, "100")
    assert sorted(statuses) == [202] * 5 + [413] * 15
    refused = next(r for r in rs if r.status == 413)
    fault = refused.json["overLimit"]
    assert fault["code"] == 413
    assert fault["message"] == ("Quota exceeded for instances: Requested 1, but already used "
                                "5 of 5 instances")
    assert fault["details"] == "Cannot run any more instances of this type."
    assert refused.headers["Retry-After"] == "0"     # waiting frees no quota
    assert await _live_servers(cloud, api.project_id) == 5
    assert len((await api.get("/servers")).json["servers"]) == 5
    await delete_all(api)


async def test_concurrent_creates_never_pass_max_total_cores(cloud):
    api, _ = await new_project(cloud, maxTotalCores=5)
    statuses, rs = await _concurrent_creates(api, "101")      # 2 vCPUs each
    assert sorted(statuses) == [202] * 2 + [413] * 18
    refused = next(r for r in rs if r.status == 413)
    assert refused.headers["Retry-After"] == "0"
    assert refused.json["overLimit"]["message"] == ("Quota exceeded for cores: Requested 2, "
                                                    "but already used 4 of 5 cores")
    assert await _live_servers(cloud, api.project_id) == 2
    await delete_all(api)


async def test_concurrent_creates_never_pass_max_total_ram(cloud):
    api, _ = await new_project(cloud, maxTotalRAMSize=3072)
    statuses, _ = await _concurrent_creates(api, "100")       # 1024 MB each
    assert sorted(statuses) == [202] * 3 + [413] * 17
    assert await _live_servers(cloud, api.project_id) == 3
    # XML fault, and a raised quota is used at once.
    r = await api.boot(name="one-more")
    assert r.status == 413
    r = await api.post("/servers.xml", json={"server": {"name": "x", "imageRef": "1",
                                                        "flavorRef": "100"}})
    assert r.status == 400   # the body is checked before the quota
    api_xml = await api.post("/servers", xml=True, json={"server": {
        "name": "xml", "imageRef": "2f1e4f8e-4f5e-4c53-9a59-3b3c3c6f0c11", "flavorRef": "100"}})
    assert api_xml.status == 413 and api_xml.headers["Retry-After"] == "0"
    assert etree.QName(api_xml.xml).localname == "overLimit"
    assert "ram" in api_xml.xml.findtext("{http://docs.openstack.org/compute/api/v2}message")
    await manage(cloud, "set-quota", api.project_id, "maxTotalRAMSize", "4096")
    assert (await api.boot(name="fits-now")).status == 202
    await delete_all(api)


async def test_deleted_servers_give_their_quota_back(cloud):
    api, _ = await new_project(cloud, maxTotalInstances=1)
    r = await api.boot(name="only")
    assert r.status == 202
    assert (await api.boot(name="second")).status == 413
    sid = r.json["server"]["id"]
    await api.delete(f"/servers/{sid}")
    await api.wait_status(sid, lambda s: s is None)
    assert (await api.boot(name="second")).status == 202
    await delete_all(api)


async def test_rate_limit_refuses_the_fourth_post_with_retry_after(cloud, demo):
    api, name = await new_project(cloud)
    await manage(cloud, "set-rate-limit", name, "POST", "*", ".*", "3", "MINUTE")
    bad = {"server": {"name": "x"}}                   # refused, but a POST all the same
    for _ in range(3):
        assert (await api.post("/servers", json=bad)).status == 400
    r = await api.post("/servers", json=bad)
    assert r.status == 413
    assert 1 <= int(r.headers["Retry-After"]) <= 20     # one request drains in 60/3 s
    assert r.headers["X-Compute-Request-Id"].startswith("req-")
    assert r.json["overLimit"] == {
        "code": 413, "message": "This request was rate-limited.",
        "details": "Only 3 POST request(s) can be made to * every minute."}
    r = await api.post("/servers", json=bad, xml=True)
    assert r.status == 413 and "Retry-After" in r.headers
    assert etree.QName(r.xml).localname == "overLimit"

    # Reads are not limited, and /limits says why.
    rate = (await api.get("/limits")).json["limits"]["rate"]
    (post,) = [lim for entry in rate if entry["uri"] == "*" for lim in entry["limit"]
               if lim["verb"] == "POST"]
    assert post["value"] == 3 and post["remaining"] == 0
    available = datetime.strptime(post["next-available"], "%Y-%m-%dT%H:%M:%SZ")
    assert available.replace(tzinfo=UTC) > datetime.now(UTC)
    # The other defaults are still there; other projects are not affected.
    assert any(entry["uri"] == "*/servers" for entry in rate)
    assert (await demo.post("/servers", json=bad)).status == 400

    # Cleared: the API reads the rules again within a few seconds.
    await manage(cloud, "clear-rate-limits", name)

    async def allowed() -> bool:
        return (await api.post("/servers", json=bad)).status == 400
    await eventually(allowed, timeout=30, interval=1.0)


def _shown(out: str) -> dict[str, list[str]]:
    """show-limits lines by their first word (limit names and used values)."""
    return {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.startswith("  ") and line.split()[0][:1].isalpha()}


async def test_management_commands_set_and_show(cloud):
    api, name = await new_project(cloud, maxTotalInstances=5)
    assert (await api.boot(name="shown", flavor="101")).status == 202
    out = (await manage(cloud, "show-limits", name)).stdout
    lines = _shown(out)
    assert lines["maxTotalInstances"] == ["5", "project"]
    assert lines["maxTotalRAMSize"] == ["15360", "default"]
    assert lines["totalInstancesUsed"] == ["1"] and lines["totalRAMUsed"] == ["2048"]
    assert "POST   *" in out and "300/MINUTE" in out
    # The boot is counted where every API process counts, and shown (by the daily
    # creates rule: POST * at 300 a minute drains one request in 0.2 s).
    (creates,) = [line for line in out.splitlines() if line.split()[:2] == ["POST", "*/servers"]]
    assert creates.split()[2:5] == ["1000/DAY", "999", "left"], creates

    r = await manage(cloud, "set-quota", name, "maxTotalCores", "-1")
    assert "maxTotalCores = -1 (unlimited)" in r.stdout
    await manage(cloud, "set-quota", name, "maxTotalInstances", "default")
    await manage(cloud, "set-rate-limit", name, "PUT", "*", ".*", "7", "HOUR")
    out = (await manage(cloud, "show-limits", name)).stdout
    assert _shown(out)["maxTotalInstances"] == ["40", "default"]
    assert _shown(out)["maxTotalCores"] == ["-1", "project"]
    assert "PUT    *" in out and "7/HOUR" in out and "300/MINUTE" in out
    assert (await api.get("/limits")).json["limits"]["absolute"]["maxTotalInstances"] == 40

    for args, message in (
        (("set-quota", "no-such-project", "maxTotalInstances", "5"), "no project named"),
        (("set-quota", name, "maxTotalInstances", "-5"), "quota value must be"),
        (("set-quota", name, "maxBogus", "5"), "invalid choice"),
        (("set-rate-limit", name, "POST", "*", "(", "3", "MINUTE"), "does not compile"),
        (("set-rate-limit", name, "POST", "*", ".*", "0", "MINUTE"), "positive integer"),
        (("set-rate-limit", name, "POST", "*", ".*", "3", "WEEK"), "invalid choice"),
    ):
        r = await manage(cloud, *args, check=False)
        assert r.returncode != 0 and message in r.stderr, (args, r.stderr)
    await delete_all(api)
