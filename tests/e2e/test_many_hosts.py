"""Many simulated hosts per agent process (``NIMBUS_COMPUTE_HOSTS``): a cloud of 30
hosts in three agent processes, 10 each, every host with its own queue, heartbeat
and capacity; killing the one process takes all ten of its hosts down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import pytest

from services.compute_agent.agent import host_names
from tests.e2e.client import Api, Cloud, eventually, fresh_cloud
from tests.e2e.conftest import E2E_ENV

HOSTS = {az: host_names(f"compute-{az}", 10) for az in ("az1", "az2", "az3")}
EVERY = {h for names in HOSTS.values() for h in names}


@pytest.fixture(scope="module")
async def many(infra, migrated_template) -> AsyncIterator[Cloud]:
    async with fresh_cloud(infra, migrated_template, "manyhosts", E2E_ENV,
                           compute_hosts=30) as cloud:
        yield cloud


async def _hypervisors(admin: Api) -> dict[str, str]:
    r = await admin.get("/os-hypervisors")
    assert r.status == 200, r.raw
    return {h["hypervisor_hostname"]: h["state"] for h in r.json["hypervisors"]}


async def _host_of(cloud: Cloud, sid: str) -> str | None:
    return await cloud.fetchval("SELECT host FROM servers WHERE id = $1::uuid", sid)


async def _consumers(cloud: Cloud, queues: set[str]) -> dict[str, int]:
    connection = await aio_pika.connect(cloud.stack.env["NIMBUS_AMQP_URL"])
    try:
        channel = await connection.channel()
        counts = {}
        for name in sorted(queues):
            declared = await channel.declare_queue(name, passive=True)
            counts[name] = declared.declaration_result.consumer_count
        return counts
    finally:
        await connection.close()


async def test_one_process_serves_ten_hosts_until_it_dies(many: Cloud):
    admin = await many.login("admin", "admin", "admin")
    demo = await many.login("demo", "demo", "demo")
    # Every host registered, up, listed by os-hypervisors, its queue consumed once.
    listed = await eventually(lambda: _hypervisors(admin))
    assert set(listed) == EVERY and set(listed.values()) == {"up"}
    assert await _consumers(many, {f"compute.{h}" for h in EVERY}) == {
        f"compute.{h}": 1 for h in EVERY}

    # Servers booted into az2 one after the other spread over the hosts of its one
    # process (the RAM weigher takes the emptiest), each built by its own host.
    made = []
    for i in range(4):
        r = await demo.boot(name=f"spread-{i}", availability_zone="az2")
        assert r.status == 202, r.raw
        sid = r.json["server"]["id"]
        made.append(sid)
        await eventually(lambda sid=sid: _host_of(many, sid))
    for sid in made:
        server, _ = await demo.wait_status(sid, lambda s: s and s["status"] in ("ACTIVE", "ERROR"))
        assert server["status"] == "ACTIVE", server.get("fault")
    placed = [await _host_of(many, sid) for sid in made]
    assert len(set(placed)) == 4 and set(placed) <= set(HOSTS["az2"]), placed

    # The az2 process dies: all ten of its hosts stop heartbeating and show down,
    # the other zones' twenty stay up, and az2 takes no server any more.
    await asyncio.to_thread(many.stack.kill, "compute-az2")

    async def az2_down():
        states = await _hypervisors(admin)
        return states if all(states[h] == "down" for h in HOSTS["az2"]) else None
    states = await eventually(az2_down, timeout=20)
    assert {h for h, s in states.items() if s == "up"} == set(HOSTS["az1"]) | set(HOSTS["az3"])
    r = await demo.boot(name="to-dead-zone", availability_zone="az2")
    assert r.status == 202, r.raw
    server, _ = await demo.wait_status(r.json["server"]["id"],
                                       lambda s: s and s["status"] in ("ACTIVE", "ERROR"))
    assert server["status"] == "ERROR" and "No valid host" in server["fault"]["message"]
    r = await demo.boot(name="live-zone", availability_zone="az1")
    sid = r.json["server"]["id"]
    server, _ = await demo.wait_status(sid, lambda s: s and s["status"] in ("ACTIVE", "ERROR"))
    assert server["status"] == "ACTIVE", server.get("fault")
    assert await _host_of(many, sid) in HOSTS["az1"]
