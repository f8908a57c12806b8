"""The services as processes: request ids across their logs, health, dead agents."""

from __future__ import annotations

import asyncio
import json
import urllib.request

from tests.e2e.client import eventually


def _log_request_ids(cloud, name: str) -> set[str]:
    ids = set()
    for line in cloud.stack.log_path(name).read_text(errors="replace").splitlines():
        try:
            rid = json.loads(line).get("request_id")
        except ValueError:
            continue
        if rid:
            ids.add(rid)
    return ids


async def test_request_id_reaches_every_service_log(demo, cloud):
    r = await demo.boot(name="traced")
    rid = r.headers["X-Compute-Request-Id"]
    sid = r.json["server"]["id"]
    server, _ = await demo.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")
    conn = await cloud.db()
    try:
        host = await conn.fetchval("SELECT host FROM servers WHERE id = $1::uuid", sid)
    finally:
        await conn.close()
    # With replicas (NIMBUS_E2E_REPLICAS), whichever process of a service took the
    # request logged it.
    for service in ("api", "scheduler", "network", host):
        names = cloud.processes(service)
        assert names, service
        await eventually(lambda: asyncio.to_thread(
            lambda: any(rid in _log_request_ids(cloud, n) for n in names)), timeout=10)
    r = await demo.delete(f"/servers/{sid}")
    assert r.status == 204
    await demo.wait_status(sid, lambda s: s is None)


async def test_every_service_reports_health(cloud):
    for spec in cloud.stack.services.values():
        def fetch(url=spec.health_url):
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        status, body = await asyncio.to_thread(fetch)
        assert status == 200, spec.name
        assert body["database"] == "ok" and body["broker"] == "ok", (spec.name, body)


async def test_agent_that_stops_heartbeating_is_not_scheduled_to(demo, cloud):
    victim = "compute-az3"
    r = await demo.boot(name="on-doomed-host", availability_zone="az3")
    stranded = r.json["server"]["id"]
    await demo.wait_status(stranded, lambda s: s and s["status"] == "ACTIVE")
    await asyncio.to_thread(cloud.stack.kill, victim)
    try:
        conn = await cloud.db()
        try:
            async def stale():
                return await conn.fetchval(
                    "SELECT now() - last_heartbeat > interval '5 seconds' "
                    "FROM compute_hosts WHERE host = $1", victim)
            await eventually(stale, timeout=15)
        finally:
            await conn.close()
        r = await demo.boot(name="to-dead-zone", availability_zone="az3")
        assert r.status == 202, r.raw
        sid = r.json["server"]["id"]
        server, _ = await demo.wait_status(sid, lambda s: s and s["status"] != "BUILD(scheduling)")
        assert server["status"] == "ERROR"
        assert "No valid host" in server["fault"]["message"]
        await demo.delete(f"/servers/{sid}")
        # The zones whose agents are alive still take servers.
        r = await demo.boot(name="live-zone", availability_zone="az1")
        sid2 = r.json["server"]["id"]
        server, _ = await demo.wait_status(sid2, lambda s: s and s["status"] == "ACTIVE")
        assert server["OS-EXT-AZ:availability_zone"] == "az1"
        await demo.delete(f"/servers/{sid2}")
        await demo.wait_status(sid2, lambda s: s is None)
        # A server on the dead host can still be deleted, without waiting for it.
        r = await demo.delete(f"/servers/{stranded}")
        assert r.status == 204
        await demo.wait_status(stranded, lambda s: s is None, timeout=5)
        conn = await cloud.db()
        try:
            assert await conn.fetchval("SELECT count(*) FROM host_claims WHERE server_id = $1::uuid",
                                       stranded) == 0
            # Its fixed address is not handed to anyone else while the guest may still
            # run with it on the dead host.
            assert await conn.fetchval("SELECT count(*) FROM ports WHERE server_id = $1::uuid",
                                       stranded) == 1
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(cloud.stack.restart, victim)

    # Back, the host's reconcile loop reaps the guest and only then frees the address.
    async def address_freed() -> bool:
        conn = await cloud.db()
        try:
            return await conn.fetchval("SELECT count(*) FROM ports WHERE server_id = $1::uuid",
                                       stranded) == 0
        finally:
            await conn.close()
    await eventually(address_freed, timeout=30)
