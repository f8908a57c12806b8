"""Multiple create (os-multiple-create, 4.4.15) and scheduler hints (OS-SCH-HNT,
4.4.10) on create server, in JSON and XML, with every service running."""

from __future__ import annotations

import asyncio

import pytest

from services.api.catalog import CIRROS_IMAGE_ID
from tests.e2e.client import NS, Api, Cloud
from tests.e2e.projects import delete_all, new_project

HINTS_NS = "http://docs.openstack.org/compute/ext/scheduler-hints/api/v2"


async def _rows(cloud: Cloud, project_id: str) -> list:
    conn = await cloud.db()
    try:
        return await conn.fetch(
            "SELECT s.id, s.name, s.reservation_id, s.request_id, "
            "       (SELECT count(*) FROM instance_actions a WHERE a.server_id = s.id "
            "          AND a.action = 'create') AS creates "
            "  FROM servers s WHERE s.project_id = $1 AND s.deleted_at IS NULL", project_id)
    finally:
        await conn.close()


async def _all_active(api: Api, ids: list[str]) -> None:
    await asyncio.gather(*(api.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")
                           for sid in ids))


async def test_max_count_is_capped_by_the_quota(cloud):
    api, _ = await new_project(cloud, maxTotalInstances=4)
    r = await api.boot(name="group", min_count=2, max_count=10)
    assert r.status == 202, r.raw
    first = r.json["server"]
    assert r.headers["Location"].endswith(f"/v2/{api.project_id}/servers/{first['id']}")
    assert len(first["adminPass"]) >= 8 and first["security_groups"] == [{"name": "default"}]
    rows = await _rows(cloud, api.project_id)
    assert len(rows) == 4
    assert first["id"] in {str(row["id"]) for row in rows}
    assert {row["name"] for row in rows} == {"group"}                # the same name for all
    assert len({row["reservation_id"] for row in rows}) == 1         # one reservation
    assert len({row["request_id"] for row in rows}) == 1
    assert all(row["creates"] == 1 for row in rows)                  # each its own action
    await _all_active(api, [str(row["id"]) for row in rows])
    listed = (await api.get("/servers/detail")).json["servers"]
    assert sorted(s["name"] for s in listed) == ["group"] * 4

    # The quota is full now: even min_count 1 is refused, and nothing is made.
    r = await api.boot(name="more", min_count=1, max_count=3)
    assert r.status == 413 and "instances" in r.json["overLimit"]["message"]
    assert len(await _rows(cloud, api.project_id)) == 4
    await delete_all(api)


async def test_min_count_out_of_reach_creates_nothing(cloud):
    api, _ = await new_project(cloud, maxTotalInstances=3)
    assert (await api.boot(name="one")).status == 202
    r = await api.boot(name="many", min_count=3, max_count=5)
    assert r.status == 413
    assert r.json["overLimit"]["message"] == ("Quota exceeded for instances: Requested 3, but "
                                              "already used 1 of 3 instances")
    assert r.json["overLimit"]["details"] == "Can only run 2 more instance(s) of this type."
    assert [row["name"] for row in await _rows(cloud, api.project_id)] == ["one"]
    # RAM in the same way: 2 x 2048 MB fit in what is left of 5120, 3 do not.
    api2, _ = await new_project(cloud, maxTotalRAMSize=5120)
    r = await api2.boot(name="big", flavor="101", min_count=3)
    assert r.status == 413 and r.json["overLimit"]["message"].startswith("Quota exceeded for ram")
    assert await _rows(cloud, api2.project_id) == []
    r = await api2.boot(name="big", flavor="101", min_count="1", max_count="3")  # strings too
    assert r.status == 202
    assert len(await _rows(cloud, api2.project_id)) == 2
    await delete_all(api)
    await delete_all(api2)


async def test_multiple_create_in_xml(cloud):
    api, _ = await new_project(cloud)
    body = (f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<server xmlns="{NS}" name="xml-group" imageRef="{CIRROS_IMAGE_ID}" '
            f'flavorRef="100" min_count="2" max_count="3"/>')
    r = await api.post("/servers", data=body, xml=True,
                       headers={"Content-Type": "application/xml"})
    assert r.status == 202, r.raw
    assert r.xml.tag == f"{{{NS}}}server" and r.xml.get("adminPass")
    assert r.headers["Location"].endswith(r.xml.get("id"))
    rows = await _rows(cloud, api.project_id)
    assert len(rows) == 3 and {row["name"] for row in rows} == {"xml-group"}
    await _all_active(api, [str(row["id"]) for row in rows])
    await delete_all(api)


@pytest.mark.parametrize("counts, message", [
    ({"min_count": 0}, "min_count must be >= 1"),
    ({"min_count": -1}, "min_count must be >= 1"),
    ({"max_count": 0}, "max_count must be >= 1"),
    ({"min_count": "abc"}, "min_count must be an integer"),
    ({"min_count": 1.5}, "min_count must be an integer"),
    ({"min_count": True}, "min_count must be an integer"),
    ({"min_count": None}, "min_count must be an integer"),
    ({"max_count": [2]}, "max_count must be an integer"),
    ({"min_count": 3, "max_count": 2}, "min_count must be <= max_count"),
    ({"min_count": "3", "max_count": "2"}, "min_count must be <= max_count"),
    ({"min_count": 2**40}, "min_count must be <="),
])
async def test_bad_counts_are_400(demo, counts, message):
    r = await demo.boot(name="bad-count", **counts)
    assert r.status == 400, r.raw
    assert message in r.json["badRequest"]["message"]


async def test_bad_counts_in_xml_are_400(demo):
    body = (f'<server xmlns="{NS}" name="x" imageRef="{CIRROS_IMAGE_ID}" flavorRef="100" '
            f'min_count="two"/>')
    r = await demo.post("/servers", data=body, xml=True,
                        headers={"Content-Type": "application/xml"})
    assert r.status == 400
    assert r.xml.findtext(f"{{{NS}}}message") == "min_count must be an integer"


def _hinted(hints: dict, key: str = "OS-SCH-HNT:scheduler_hints") -> dict:
    return {"server": {"name": "hinted", "imageRef": str(CIRROS_IMAGE_ID), "flavorRef": "100"},
            key: hints}


@pytest.mark.parametrize("hints, message", [
    ({"same_host": "00000000-0000-4000-8000-000000000000"},
     "Scheduler hint same_host: server 00000000-0000-4000-8000-000000000000 could not be found."),
    ({"different_host": ["not-a-uuid"]}, "Scheduler hint different_host: 'not-a-uuid' is not"),
    ({"near": ["00000000-0000-4000-8000-000000000000", "00000000-0000-4000-8000-000000000001"]},
     "Scheduler hint near must name one server UUID."),
    ({"near": 5}, "Scheduler hint near: 5 is not a server UUID."),
])
async def test_hints_naming_unknown_servers_are_400(demo, hints, message):
    before = len((await demo.get("/servers")).json["servers"])
    r = await demo.post("/servers", json=_hinted(hints))
    assert r.status == 400 and message in r.json["badRequest"]["message"], r.raw
    assert len((await demo.get("/servers")).json["servers"]) == before


async def test_hints_must_be_an_object(demo):
    r = await demo.post("/servers", json=_hinted(["near"]))
    assert r.status == 400
    assert r.json["badRequest"]["message"] == "Malformed scheduler_hints attribute"


async def test_hints_naming_another_projects_server_are_400(demo, alt):
    # Not near: a preference, ignored when its server is not found
    # (test_scheduler_hints.py).
    theirs = await alt.boot(name="alt-own")
    assert theirs.status == 202
    sid = theirs.json["server"]["id"]
    for key in ("same_host", "different_host"):
        for body_key in ("OS-SCH-HNT:scheduler_hints", "os:scheduler_hints",
                         "OS-SCH-HINTS:scheduler_hints"):
            r = await demo.post("/servers", json=_hinted({key: sid}, body_key))
            assert r.status == 400, r.raw
            assert r.json["badRequest"]["message"] == (
                f"Scheduler hint {key}: server {sid} could not be found.")
    await alt.delete(f"/servers/{sid}")


async def test_hints_naming_own_servers_are_accepted(cloud):
    api, _ = await new_project(cloud)
    r = await api.boot(name="anchor")
    anchor = r.json["server"]["id"]
    anchor_server, _ = await api.wait_status(anchor, lambda s: s and s["status"] == "ACTIVE")
    # JSON, a single id where a list is allowed (upper case: normalised), and
    # an unknown hint passed through.
    r = await api.post("/servers", json=_hinted({"same_host": anchor.upper(),
                                                 "build_near_host_ip": "10.0.0.1"}))
    assert r.status == 202, r.raw
    second = r.json["server"]["id"]
    server, _ = await api.wait_status(second, lambda s: s and s["status"] in ("ACTIVE", "ERROR"))
    assert server["status"] == "ACTIVE", server.get("fault")
    # same_host reached the scheduler in the shape its filter reads.
    assert server["hostId"] == anchor_server["hostId"]
    # XML, as section 4.4.10 shows it, with a repeated element for a list (both
    # servers named are placed by now, as the scheduler's filter needs).
    body = (f'<server xmlns="{NS}" xmlns:OS-SCH-HNT="{HINTS_NS}" name="xml-hinted" '
            f'imageRef="{CIRROS_IMAGE_ID}" flavorRef="100"><OS-SCH-HNT:scheduler_hints>'
            f'<same_host>{anchor}</same_host><same_host>{second}</same_host>'
            f'</OS-SCH-HNT:scheduler_hints></server>')
    r = await api.post("/servers", data=body, xml=True,
                       headers={"Content-Type": "application/xml"})
    assert r.status == 202, r.raw
    third = r.xml.get("id")
    server, _ = await api.wait_status(third, lambda s: s and s["status"] in ("ACTIVE", "ERROR"))
    assert server["status"] == "ACTIVE", server.get("fault")
    assert server["hostId"] == anchor_server["hostId"]
    await delete_all(api)
