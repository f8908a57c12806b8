"""One server's life through every service, in JSON and in XML."""

from __future__ import annotations

from lxml import etree

from services.api.catalog import CIRROS_IMAGE_ID
from tests.e2e.client import ATOM, NS, eventually
from tests.e2e.projects import new_project

BUILD_STEPS = ["BUILD(scheduling)", "BUILD(networking)", "BUILD(block_device_mapping)",
               "BUILD(spawning)"]


async def test_boot_poll_list_get_delete_json(demo, cloud):
    r = await demo.boot(name="life-json", metadata={"role": "web"})
    assert r.status == 202, r.raw
    created = r.json["server"]
    sid = created["id"]
    assert len(created["adminPass"]) >= 8
    assert created["security_groups"] == [{"name": "default"}]
    rels = {link["rel"]: link["href"] for link in created["links"]}
    assert rels["self"] == f"{cloud.api_url}/v2/{demo.project_id}/servers/{sid}"
    assert rels["bookmark"] == f"{cloud.api_url}/{demo.project_id}/servers/{sid}"
    assert r.headers["Location"] == rels["self"]
    assert r.headers["X-Compute-Request-Id"].startswith("req-")

    server, seen = await demo.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")
    # Every status seen is one of the build steps, in order, then ACTIVE.
    assert seen[-1] == "ACTIVE"
    steps = [s for s in seen if s != "ACTIVE"]
    assert steps == sorted(steps, key=BUILD_STEPS.index), seen
    assert server["OS-EXT-STS:vm_state"] == "active"
    assert server["OS-EXT-STS:task_state"] is None
    assert server["OS-EXT-STS:power_state"] == 1
    assert server["OS-EXT-AZ:availability_zone"] in ("az1", "az2", "az3")
    assert server["metadata"] == {"role": "web"}
    assert server["flavor"]["id"] == "100"
    assert server["image"]["id"] == str(CIRROS_IMAGE_ID)
    assert server["tenant_id"] == demo.project_id
    assert len(server["hostId"]) == 56
    (net, ips), = server["addresses"].items()
    assert ips[0]["version"] == 4 and ips[0]["OS-EXT-IPS:type"] == "fixed"
    assert ips[0]["OS-EXT-IPS-MAC:mac_addr"].startswith("fa:16:3e")
    addr = ips[0]["addr"]

    conn = await cloud.db()
    try:
        host = await conn.fetchval("SELECT host FROM servers WHERE id = $1::uuid", sid)
        claim = await conn.fetchrow("SELECT * FROM host_claims WHERE server_id = $1::uuid", sid)
        assert host and claim["host"] == host and claim["ram_mb"] == 1024

        listed = (await demo.get("/servers")).json["servers"]
        assert sid in [s["id"] for s in listed]
        detailed = (await demo.get("/servers/detail")).json["servers"]
        assert [s for s in detailed if s["id"] == sid][0]["status"] == "ACTIVE"

        r = await demo.delete(f"/servers/{sid}")
        assert r.status == 204 and r.raw == b""
        await demo.wait_status(sid, lambda s: s is None)
        row = await conn.fetchrow("SELECT vm_state, deleted_at FROM servers WHERE id = $1::uuid", sid)
        assert row["vm_state"] == "deleted" and row["deleted_at"] is not None
        assert await conn.fetchval("SELECT count(*) FROM host_claims WHERE server_id = $1::uuid", sid) == 0
        assert await conn.fetchval("SELECT count(*) FROM ports WHERE server_id = $1::uuid", sid) == 0
        assert await conn.fetchval(
            "SELECT server_id FROM fixed_ips WHERE address = $1::inet", addr) is None
    finally:
        await conn.close()
    assert sid not in [s["id"] for s in (await demo.get("/servers")).json["servers"]]


async def test_boot_get_delete_xml(demo, cloud):
    body = (f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<server xmlns="{NS}" name="life-xml" imageRef="{CIRROS_IMAGE_ID}" flavorRef="101">'
            f'<metadata><meta key="tier">db</meta></metadata></server>')
    r = await demo.post("/servers", data=body, xml=True,
                        headers={"Content-Type": "application/xml"})
    assert r.status == 202, r.raw
    assert r.headers["Content-Type"].startswith("application/xml")
    root = r.xml
    assert etree.QName(root).localname == "server"
    sid = root.get("id")
    assert root.get("adminPass")
    assert {link.get("rel") for link in root.findall(f"{{{ATOM}}}link")} == {"self", "bookmark"}

    async def active():
        r = await demo.get(f"/servers/{sid}.xml")
        return r if r.status == 200 and r.xml.get("status") == "ACTIVE" else None
    r = await eventually(active)
    server = r.xml
    assert etree.QName(server).namespace == NS
    assert server.get("name") == "life-xml"
    assert server.find(f"{{{NS}}}flavor").get("id") == "101"
    meta = server.find(f"{{{NS}}}metadata").findall(f"{{{NS}}}meta")
    assert [(m.get("key"), m.text) for m in meta] == [("tier", "db")]
    ip = server.find(f"{{{NS}}}addresses/{{{NS}}}network/{{{NS}}}ip")
    assert ip is not None and ip.get("version") == "4" and ip.get("addr")

    r = await demo.get("/servers.xml")
    assert sid in [s.get("id") for s in r.xml.findall(f"{{{NS}}}server")]
    r = await demo.get("/servers/detail", xml=True)
    assert "ACTIVE" in [s.get("status") for s in r.xml.findall(f"{{{NS}}}server")
                        if s.get("id") == sid]

    r = await demo.delete(f"/servers/{sid}", xml=True)
    assert r.status == 204
    await demo.wait_status(sid, lambda s: s is None)
    r = await demo.get(f"/servers/{sid}.xml")
    assert r.status == 404
    assert etree.QName(r.xml).localname == "itemNotFound" and r.xml.get("code") == "404"


async def test_delete_while_building_frees_everything(demo, cloud):
    r = await demo.boot(name="short-lived")
    sid = r.json["server"]["id"]
    r = await demo.delete(f"/servers/{sid}")
    assert r.status == 204
    await demo.wait_status(sid, lambda s: s is None)
    conn = await cloud.db()
    try:
        async def settled():
            claims = await conn.fetchval(
                "SELECT count(*) FROM host_claims WHERE server_id = $1::uuid", sid)
            ports = await conn.fetchval("SELECT count(*) FROM ports WHERE server_id = $1::uuid", sid)
            state = await conn.fetchval("SELECT vm_state FROM servers WHERE id = $1::uuid", sid)
            return claims == 0 and ports == 0 and state == "deleted"
        await eventually(settled)
    finally:
        await conn.close()


async def test_no_host_fits_is_error_with_reason(cloud):
    # standard.8xlarge wants 120 GiB of RAM; the simulated hosts have 64 GiB. The
    # project's RAM quota must let it through to the scheduler.
    demo, _ = await new_project(cloud, maxTotalRAMSize=-1)
    r = await demo.boot(name="too-big", flavor="114")
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    server, seen = await demo.wait_status(sid, lambda s: s and s["status"] == "ERROR")
    # It may fail before the first poll; it never gets past scheduling.
    assert set(seen) <= {"BUILD(scheduling)", "ERROR"}, seen
    assert server["fault"]["code"] == 500
    assert "No valid host" in server["fault"]["message"]
    assert "RAM" in server["fault"]["message"] + server["fault"].get("details", "")
    r = await demo.delete(f"/servers/{sid}")
    assert r.status == 204
    await demo.wait_status(sid, lambda s: s is None)


async def test_other_project_cannot_see_server(demo, alt):
    r = await demo.boot(name="private")
    sid = r.json["server"]["id"]
    try:
        assert (await alt.get(f"/servers/{sid}")).status == 404
        assert (await alt.delete(f"/servers/{sid}")).status == 404
        assert sid not in [s["id"] for s in (await alt.get("/servers")).json["servers"]]
    finally:
        await demo.delete(f"/servers/{sid}")
        await demo.wait_status(sid, lambda s: s is None)
