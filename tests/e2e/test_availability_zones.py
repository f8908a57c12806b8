"""Availability zones (section 4.4.2.1): the zones of the compute agents and
whether any of their hosts is up, in JSON and XML."""

from __future__ import annotations

from tests.e2e.client import NS, eventually

ZONES = {"az1", "az2", "az3"}


async def _zones(api, **kw) -> dict:
    r = await api.get("/os-availability-zone", **kw)
    assert r.status == 200, r.raw
    return r


async def test_every_agent_zone_is_listed_available(demo, alt):
    async def all_up():
        info = (await _zones(demo)).json["availabilityZoneInfo"]
        return info if {z["zoneName"] for z in info if z["zoneState"]["available"]} >= ZONES \
            else None
    info = await eventually(all_up)
    for zone in info:
        assert set(zone) == {"zoneName", "zoneState", "hosts"}
        assert zone["hosts"] is None and zone["zoneState"] == {"available": True}
    assert {z["zoneName"] for z in info} == ZONES
    # Zones are not per project.
    assert (await _zones(alt)).json == {"availabilityZoneInfo": info}


async def test_zones_in_xml(demo):
    async def all_up():
        r = await _zones(demo, xml=True)
        zones = {z.get("name"): z for z in r.xml.findall(f"{{{NS}}}availabilityZone")}
        return (r, zones) if set(zones) == ZONES and all(
            z.find(f"{{{NS}}}zoneState").get("available") == "True" for z in zones.values()) \
            else None
    r, zones = await eventually(all_up)
    assert r.headers["Content-Type"].startswith("application/xml")
    assert r.xml.tag == f"{{{NS}}}availabilityZones"
    for zone in zones.values():
        # <availabilityZone name="az1"><zoneState available="True"/><metadata/></availabilityZone>
        assert [child.tag for child in zone] == [f"{{{NS}}}zoneState", f"{{{NS}}}metadata"]
        assert dict(zone.attrib) == {"name": zone.get("name")}
        assert len(zone.find(f"{{{NS}}}metadata")) == 0
    r2 = await demo.get("/os-availability-zone.xml")
    assert r2.status == 200 and r2.xml.tag == f"{{{NS}}}availabilityZones"


async def test_a_zone_whose_hosts_are_down_or_disabled_is_not_available(demo, cloud):
    conn = await cloud.db()
    try:
        await conn.execute(
            """INSERT INTO compute_hosts (host, availability_zone, total_ram_mb, total_disk_gb,
                                          total_vcpus, last_heartbeat, disabled)
               VALUES ('e2e-dead', 'az-dead', 1024, 10, 1, now() - interval '1 hour', false),
                      ('e2e-off', 'az-off', 1024, 10, 1, now() + interval '1 hour', true),
                      ('e2e-mixed-dead', 'az1', 1024, 10, 1, now() - interval '1 hour', false)""")
        info = (await _zones(demo)).json["availabilityZoneInfo"]
        state = {z["zoneName"]: z["zoneState"]["available"] for z in info}
        assert state["az-dead"] is False and state["az-off"] is False
        assert state["az1"] is True  # one live host is enough
        # Available zones first (as Nova listed them), then the others.
        flags = [z["zoneState"]["available"] for z in info]
        assert flags == sorted(flags, reverse=True)
        r = await _zones(demo, xml=True)
        dead = [z for z in r.xml.findall(f"{{{NS}}}availabilityZone") if z.get("name") == "az-dead"]
        assert dead[0].find(f"{{{NS}}}zoneState").get("available") == "False"
    finally:
        await conn.execute("DELETE FROM compute_hosts WHERE host LIKE 'e2e-%'")
        await conn.close()
    names = {z["zoneName"] for z in (await _zones(demo)).json["availabilityZoneInfo"]}
    assert names.isdisjoint({"az-dead", "az-off"})


async def test_needs_a_token(cloud, demo):
    r = await cloud.request("GET", f"/v2/{demo.project_id}/os-availability-zone")
    assert r.status == 401
