"""Gateway throughput, reported as ratios to a baseline measured in the same run.

The baseline is ``GET /`` (version discovery: no token check, no database);
each other request pays for what it adds (token validation, queries, JSON or
XML rendering). Nothing here is a timed assertion: the machines are shared and
noisy, so the numbers are printed for the record and only correctness is
asserted.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from benchmarks.drive import closed_loop
from tests.e2e.projects import new_project

REQUESTS = 1500
CONCURRENCY = 16


async def _rate(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    statuses = await closed_loop(session, url, headers, REQUESTS, CONCURRENCY)
    elapsed = time.perf_counter() - start
    assert statuses == [200] * REQUESTS, set(statuses)
    return REQUESTS / elapsed


async def test_read_paths_against_version_discovery(cloud):
    demo, _ = await new_project(cloud, maxTotalRAMSize=-1, maxTotalInstances=-1)
    for i in range(20):  # a project with some servers to list
        r = await demo.boot(name=f"bench-{i}")
        assert r.status == 202
    base = cloud.api_url
    auth = {"X-Auth-Token": demo.token}
    cases = {
        "GET / (baseline)": (f"{base}/", {}),
        "GET flavors/detail": (f"{base}{demo.path('/flavors/detail')}", auth),
        "GET flavors/detail.xml": (f"{base}{demo.path('/flavors/detail.xml')}", auth),
        "GET servers/detail (20)": (f"{base}{demo.path('/servers/detail')}", auth),
        "GET servers/detail.xml (20)": (f"{base}{demo.path('/servers/detail.xml')}", auth),
    }
    async with aiohttp.ClientSession() as session:
        rates = {name: await _rate(session, url, hdrs) for name, (url, hdrs) in cases.items()}
    baseline = rates["GET / (baseline)"]
    print(f"\n{'request':32} {'req/s':>8} {'ratio to baseline':>18}")
    for name, rate in rates.items():
        print(f"{name:32} {rate:8.0f} {rate / baseline:18.2f}")
    for sid in [s["id"] for s in (await demo.get("/servers")).json["servers"]]:
        await demo.delete(f"/servers/{sid}")


async def test_boot_throughput_against_one_boot(cloud):
    """Time to ACTIVE for 30 concurrent boots, as a multiple of one boot's time."""
    demo, _ = await new_project(cloud, maxTotalRAMSize=-1, maxTotalInstances=-1)
    async def boot_one(name: str) -> str:
        r = await demo.boot(name=name)
        assert r.status == 202, r.raw
        return r.json["server"]["id"]

    async def until_active(sid: str) -> None:
        server, _ = await demo.wait_status(sid, lambda s: s and s["status"] in ("ACTIVE", "ERROR"),
                                           timeout=120)
        assert server["status"] == "ACTIVE", server.get("fault")

    start = time.perf_counter()
    single = await boot_one("bench-single")
    await until_active(single)
    one = time.perf_counter() - start

    start = time.perf_counter()
    sids = await asyncio.gather(*(boot_one(f"bench-many-{i}") for i in range(30)))
    await asyncio.gather(*(until_active(s) for s in sids))
    many = time.perf_counter() - start
    print(f"\none boot to ACTIVE {one:.2f} s; 30 concurrent boots {many:.2f} s "
          f"= {many / one:.1f} x one boot ({30 * one / many:.1f} x the serial rate)")
    for sid in [single, *sids]:
        await demo.delete(f"/servers/{sid}")
