"""Two processes of every replicated service (api, scheduler, network, volume,
console proxy) side by side on one database and broker: limits shared, periodic
jobs led by one replica, a dead leader replaced. The rest of the suite runs on
such a cloud with ``NIMBUS_E2E_REPLICAS=2`` (see the README's scaling section).
"""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request

import aiohttp

from tests.e2e.client import Cloud, eventually
from tests.e2e.projects import manage, new_project

LED = {"scheduler": "build-sweep", "volume": "volume-sweep",
       "network": "fixed_ip_reservation_sweep"}


def _health(cloud: Cloud, name: str) -> dict:
    with urllib.request.urlopen(cloud.stack.services[name].health_url, timeout=5) as resp:
        return json.loads(resp.read())


async def leaders(cloud: Cloud, service: str) -> list[str]:
    """Which of the service's two processes lead its periodic job now."""
    out = []
    for name in (service, f"{service}-2"):
        health = await asyncio.to_thread(_health, cloud, name)
        if LED[service] in health.get("leading", []):
            out.append(name)
    return out


async def test_every_service_runs_two_healthy_processes(replica_cloud):
    stack = replica_cloud.stack
    for service in ("api", "scheduler", "network", "volume", "consoleproxy"):
        assert stack.pid(service) and stack.pid(f"{service}-2"), service
        assert stack.pid(service) != stack.pid(f"{service}-2")
        assert stack.healthy(service) and stack.healthy(f"{service}-2"), service


async def test_rate_limits_are_one_allowance_across_api_processes(replica_cloud):
    cloud = replica_cloud
    api, name = await new_project(cloud)
    await manage(cloud, "set-rate-limit", name, "GET", "*changes-since*",
                 ".*changes-since.*", "10", "HOUR")
    url = f"{cloud.api_url}/v2/{api.project_id}/servers?changes-since=2020-01-01T00:00:00Z"
    codes = []
    # A connection of its own per request, so that the kernel spreads them over
    # both API processes (SO_REUSEPORT hashes each new connection).
    for _ in range(40):
        async with (aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s,
                    s.get(url, headers={"X-Auth-Token": api.token}) as r):
            codes.append(r.status)
    assert codes.count(200) == 10 and codes.count(413) == 30
    # Both processes refused some (so both counted against the one allowance).
    for proc in ("api", "api-2"):
        assert "api.rate_limited" in cloud.stack.log_path(proc).read_text(), proc
    limits = (await api.get("/limits")).json["limits"]["rate"]
    (limit,) = next(g["limit"] for g in limits if g["uri"] == "*changes-since*")
    assert (limit["value"], limit["remaining"]) == (10, 0)


async def test_each_periodic_job_has_one_leader_and_a_dead_one_is_replaced(replica_cloud):
    cloud = replica_cloud

    async def one_leader(service: str) -> bool:
        return len(await leaders(cloud, service)) == 1

    for service in LED:
        await eventually(lambda s=service: one_leader(s))
    (leader,) = await leaders(cloud, "scheduler")
    other = "scheduler-2" if leader == "scheduler" else "scheduler"
    cloud.stack.kill(leader, signal.SIGKILL)   # its session, and so its lock, goes with it
    try:
        async def taken_over() -> bool:
            health = await asyncio.to_thread(_health, cloud, other)
            return LED["scheduler"] in health.get("leading", [])
        await eventually(taken_over)
    finally:
        await asyncio.to_thread(cloud.stack.restart, leader)
    assert await leaders(cloud, "scheduler") == [other]
