"""Nova's operator resources over the compute agents (``compute_hosts``):
os-availability-zone/detail, os-hypervisors and os-services, admin only (403 to
members, as Nova's policies), JSON and XML, checked against what the database holds."""

from __future__ import annotations

from tests.e2e.client import NS, Cloud, eventually


async def _admin(cloud: Cloud):
    return await cloud.login("admin", "admin", "admin")


async def _host_rows(cloud: Cloud) -> list:
    conn = await cloud.db()
    try:
        return await conn.fetch("SELECT * FROM compute_hosts ORDER BY host")
    finally:
        await conn.close()


def _live(cloud: Cloud) -> set[str]:
    """The stack's own agents, which heartbeat: other tests of the session may have
    run agents of their own (test_capabilities' lean-1), stopped since, whose rows
    stay and show down."""
    return {name for name, spec in cloud.stack.services.items()
            if "services.compute_agent" in spec.argv}


async def test_members_are_refused_every_operator_resource(demo):
    for path in ("/os-availability-zone/detail", "/os-hypervisors", "/os-hypervisors/detail",
                 "/os-hypervisors/statistics", "/os-hypervisors/1", "/os-hypervisors/az/search",
                 "/os-hypervisors/az/servers", "/os-services", "/os-simple-tenant-usage"):
        r = await demo.get(path)
        assert r.status == 403, (path, r.raw)
        assert r.json["forbidden"]["message"].startswith("Policy doesn't allow"), path
    r = await demo.cloud.request("PUT", demo.path("/os-services/disable"), token=demo.token,
                                 json={"host": "x", "binary": "nova-compute"})
    assert r.status == 403
    # The plain zone list, which `availability zone list` falls back to, stays open.
    assert (await demo.get("/os-availability-zone")).status == 200


async def test_zone_detail_lists_every_agent_with_its_service(cloud):
    admin = await _admin(cloud)

    live = _live(cloud)

    async def all_live_up():
        info = (await admin.get("/os-availability-zone/detail")).json["availabilityZoneInfo"]
        up = {host for z in info for host, services in z["hosts"].items()
              if services["nova-compute"]["available"]}
        return info if up == live else None
    info = await eventually(all_live_up)
    rows = await _host_rows(cloud)
    assert {z["zoneName"] for z in info} == {r["availability_zone"] for r in rows}
    for zone in info:
        hosts = {r["host"] for r in rows if r["availability_zone"] == zone["zoneName"]}
        assert set(zone["hosts"]) == hosts
        # A zone is available while one of its hosts is up.
        assert zone["zoneState"]["available"] is bool(hosts & live)
        for host, services in zone["hosts"].items():
            assert set(services) == {"nova-compute"}
            state = services["nova-compute"]
            assert state["available"] is (host in live) and state["active"] is True
            assert state["updated_at"][:4].isdigit()
    r = await admin.get("/os-availability-zone/detail", xml=True)
    assert r.xml.tag == f"{{{NS}}}availabilityZones"
    first = r.xml.find(f"{{{NS}}}availabilityZone")
    host = first.find(f"{{{NS}}}hosts").find(f"{{{NS}}}host")
    service = host.find(f"{{{NS}}}services").find(f"{{{NS}}}service")
    assert service.get("name") == "nova-compute"
    assert service.find(f"{{{NS}}}serviceState").get("available") == "True"


async def test_hypervisors_are_the_agents_with_their_claims(cloud, demo):
    admin = await _admin(cloud)
    r = await demo.boot(name="hv")
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    await demo.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")
    rows = {r["host"]: r for r in await _host_rows(cloud)}
    server_host = await cloud.fetchval("SELECT host FROM servers WHERE id = $1::uuid", sid)

    listed = (await admin.get("/os-hypervisors")).json["hypervisors"]
    assert {h["hypervisor_hostname"] for h in listed} == set(rows)
    assert {h["id"] for h in listed} == {r["id"] for r in rows.values()}
    assert all(set(h) == {"id", "hypervisor_hostname", "state", "status"} for h in listed)

    detail = (await admin.get("/os-hypervisors/detail")).json["hypervisors"]
    conn = await cloud.db()
    try:
        running = dict(await conn.fetch(
            "SELECT host, count(*) FROM servers WHERE deleted_at IS NULL AND host IS NOT NULL "
            "GROUP BY host"))
        rows = {r["host"]: r for r in await conn.fetch("SELECT * FROM compute_hosts")}
    finally:
        await conn.close()
    for h in detail:
        row = rows[h["hypervisor_hostname"]]
        assert (h["vcpus"], h["memory_mb"], h["local_gb"]) == (
            row["total_vcpus"], row["total_ram_mb"], row["total_disk_gb"])
        assert (h["vcpus_used"], h["memory_mb_used"], h["local_gb_used"]) == (
            row["used_vcpus"], row["used_ram_mb"], row["used_disk_gb"])
        assert h["free_ram_mb"] == row["total_ram_mb"] - row["used_ram_mb"]
        assert h["running_vms"] == running.get(row["host"], 0)
        assert h["hypervisor_type"] == row["hypervisor_type"]
        assert h["service"]["host"] == row["host"]
        assert h["state"] == ("up" if row["host"] in _live(cloud) else "down")
    mine = next(h for h in detail if h["hypervisor_hostname"] == server_host)
    assert mine["running_vms"] >= 1 and mine["vcpus_used"] >= 1

    stats = (await admin.get("/os-hypervisors/statistics")).json["hypervisor_statistics"]
    assert stats["count"] == len(rows)
    assert stats["vcpus"] == sum(r["total_vcpus"] for r in rows.values())
    assert stats["running_vms"] == sum(running.values())

    shown = (await admin.get(f"/os-hypervisors/{mine['id']}")).json["hypervisor"]
    assert shown["hypervisor_hostname"] == server_host
    assert (await admin.get("/os-hypervisors/999999")).status == 404
    r = await admin.get(f"/os-hypervisors/{mine['id']}/uptime")
    assert r.status == 501 and "notImplemented" in r.json
    assert (await admin.get("/os-hypervisors/999999/uptime")).status == 404
    assert (await admin.get("/os-hypervisors/nope")).status == 404

    found = (await admin.get(f"/os-hypervisors/{server_host}/servers")).json["hypervisors"]
    assert sid in {s["uuid"] for h in found for s in h["servers"]}
    searched = (await admin.get(f"/os-hypervisors/{server_host}/search")).json["hypervisors"]
    assert server_host in {h["hypervisor_hostname"] for h in searched}
    assert (await admin.get("/os-hypervisors/no-such-host-xyz/search")).status == 404

    r = await admin.get("/os-hypervisors/detail", xml=True)
    assert r.xml.tag == f"{{{NS}}}hypervisors"
    items = r.xml.findall(f"{{{NS}}}hypervisor")
    assert {i.get("hypervisor_hostname") for i in items} == set(rows)
    assert items[0].find(f"{{{NS}}}service").get("host") == items[0].get("hypervisor_hostname")
    await demo.delete(f"/servers/{sid}")


async def test_services_list_filters_and_disable_is_honoured(cloud, demo):
    admin = await _admin(cloud)
    rows = await _host_rows(cloud)
    services = (await admin.get("/os-services")).json["services"]
    assert [(s["host"], s["zone"], s["binary"]) for s in services] == [
        (r["host"], r["availability_zone"], "nova-compute") for r in rows]
    assert all(s["status"] == "enabled" for s in services)
    assert {s["host"] for s in services if s["state"] == "up"} == _live(cloud)
    target = next(r for r in rows if r["availability_zone"] == "az3")
    only = (await admin.get(f"/os-services?host={target['host']}")).json["services"]
    assert [s["host"] for s in only] == [target["host"]]
    assert (await admin.get("/os-services?binary=nova-scheduler")).json["services"] == []

    others = [r for r in rows if r["availability_zone"] == "az3" and r["host"] != target["host"]]
    assert not others, "the e2e stack runs one agent per zone"
    put = admin.cloud.request
    try:
        r = await put("PUT", admin.path("/os-services/disable-log-reason"), token=admin.token,
                      json={"host": target["host"], "binary": "nova-compute",
                            "disabled_reason": "maintenance"})
        assert r.status == 200, r.raw
        assert r.json["service"] == {"host": target["host"], "binary": "nova-compute",
                                     "status": "disabled", "disabled_reason": "maintenance"}
        listed = (await admin.get(f"/os-services?host={target['host']}")).json["services"]
        assert (listed[0]["status"], listed[0]["disabled_reason"]) == ("disabled", "maintenance")
        zones = (await demo.get("/os-availability-zone")).json["availabilityZoneInfo"]
        assert {z["zoneName"]: z["zoneState"]["available"] for z in zones}["az3"] is False
        # The scheduler leaves the disabled host out: a server for its zone finds none.
        r = await demo.boot(name="disabled-zone", availability_zone="az3")
        assert r.status == 202, r.raw
        sid = r.json["server"]["id"]
        server, _ = await demo.wait_status(sid, lambda s: s and s["status"] == "ERROR")
        assert "No valid host" in server["fault"]["message"]
        await demo.delete(f"/servers/{sid}")
    finally:
        r = await put("PUT", admin.path("/os-services/enable"), token=admin.token,
                      json={"host": target["host"], "binary": "nova-compute"})
    assert r.status == 200 and r.json["service"]["status"] == "enabled"
    listed = (await admin.get(f"/os-services?host={target['host']}")).json["services"]
    assert (listed[0]["status"], listed[0]["disabled_reason"]) == ("enabled", None)

    for body, status in [({"host": "nowhere", "binary": "nova-compute"}, 404),
                         ({"host": target["host"], "binary": "nova-cert"}, 404),
                         ({"binary": "nova-compute"}, 400)]:
        r = await put("PUT", admin.path("/os-services/disable"), token=admin.token, json=body)
        assert r.status == status, (body, r.raw)
    assert all(s["status"] == "enabled" for s in (await admin.get("/os-services")).json["services"])

    r = await admin.get("/os-services", xml=True)
    assert r.xml.tag == f"{{{NS}}}services"
    assert {s.get("host") for s in r.xml.findall(f"{{{NS}}}service")} == {r["host"] for r in rows}


async def test_down_host_shows_down_everywhere(cloud):
    admin = await _admin(cloud)
    conn = await cloud.db()
    try:
        await conn.execute(
            """INSERT INTO compute_hosts (host, availability_zone, total_ram_mb, total_disk_gb,
                                          total_vcpus, last_heartbeat)
               VALUES ('e2e-gone', 'az1', 2048, 20, 2, now() - interval '1 hour')""")
        services = {s["host"]: s for s in (await admin.get("/os-services")).json["services"]}
        assert services["e2e-gone"]["state"] == "down"
        hyper = {h["hypervisor_hostname"]: h
                 for h in (await admin.get("/os-hypervisors")).json["hypervisors"]}
        assert (hyper["e2e-gone"]["state"], hyper["e2e-gone"]["status"]) == ("down", "enabled")
        info = (await admin.get("/os-availability-zone/detail")).json["availabilityZoneInfo"]
        az1 = next(z for z in info if z["zoneName"] == "az1")
        assert az1["hosts"]["e2e-gone"]["nova-compute"]["available"] is False
        assert az1["zoneState"]["available"] is True  # its other host is up
        stats = (await admin.get("/os-hypervisors/statistics")).json["hypervisor_statistics"]
        assert stats["count"] == await conn.fetchval("SELECT count(*) FROM compute_hosts")
    finally:
        await conn.execute("DELETE FROM compute_hosts WHERE host = 'e2e-gone'")
        await conn.close()


async def test_operator_extensions_are_listed(demo):
    aliases = {e["alias"]: e for e in (await demo.get("/extensions")).json["extensions"]}
    for alias in ("os-quota-sets", "os-hypervisors", "os-services", "os-simple-tenant-usage",
                  "os-networks", "os-tenant-networks", "os-availability-zone"):
        assert alias in aliases, alias
    assert aliases["os-quota-sets"]["namespace"] == \
        "http://docs.openstack.org/compute/ext/quotas-sets/api/v1.1"
    assert (await demo.get("/extensions/os-hypervisors")).json["extension"]["name"] == "Hypervisors"


async def test_aggregates_are_none_and_admin_only(cloud, demo):
    admin = await _admin(cloud)
    r = await admin.get("/os-aggregates")
    assert r.status == 200 and r.json == {"aggregates": []}
    assert (await demo.get("/os-aggregates")).status == 403


async def test_identity_resolves_projects_for_admins(cloud, demo):
    """`openstack quota set --instances 5 demo` looks the project up by id, then name."""
    admin = await _admin(cloud)
    base = cloud.identity_url
    r = await cloud.request("GET", "/v3/projects?name=demo", token=admin.token, base=base)
    assert r.status == 200 and [p["id"] for p in r.json["projects"]] == [demo.project_id]
    r = await cloud.request("GET", f"/v3/projects/{demo.project_id}", token=admin.token, base=base)
    assert r.status == 200 and r.json["project"]["name"] == "demo"
    r = await cloud.request("GET", "/v3/projects", token=demo.token, base=base)
    assert r.status == 403
    r = await cloud.request("GET", f"/v3/projects/{demo.project_id}", token=demo.token, base=base)
    assert r.status == 200 and r.json["project"]["id"] == demo.project_id
    r = await cloud.request("GET", f"/v3/projects/{admin.project_id}", token=demo.token, base=base)
    assert r.status == 403
    r = await cloud.request("GET", "/v3/projects/nope", token=admin.token, base=base)
    assert r.status == 404
