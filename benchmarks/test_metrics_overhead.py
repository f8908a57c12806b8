"""The CPU the HTTP metrics middleware costs the API, per request.

Two API processes on the same database and broker: the stack's (with the
middleware) and one started here with ``shared.metrics.http_metrics_mw``
replaced by a pass-through before the app is built. Each answers the same
``GET /v2/{project_id}/servers/{server_id}`` requests; the CPU each process
used (``/proc/<pid>/stat``: user + system) per request is printed with their
ratio. As in ``test_gateway``, nothing here is a timed assertion: the numbers
are for the record, only the answers are checked.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp

from benchmarks.drive import closed_loop
from deploy.local import infra
from tests.e2e.acting import active_server, delete_and_wait
from tests.e2e.client import eventually
from tests.e2e.projects import new_project

REQUESTS = 2000
CONCURRENCY = 8
TICK = os.sysconf("SC_CLK_TCK")

# Run the API as `python -m services.api` does, with the middleware a pass-through.
_WITHOUT_METRICS = """
import runpy
from aiohttp import web
import shared.metrics

@web.middleware
async def passthrough(request, handler):
    return await handler(request)

shared.metrics.http_metrics_mw = lambda app: passthrough
runpy.run_module("services.api", run_name="__main__")
"""


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


async def _cpu_per_request(session: aiohttp.ClientSession, pid: int, url: str,
                           headers: dict[str, str]) -> float:
    # Warm up first: connections, token cache, prepared statements.
    statuses = await closed_loop(session, url, headers, 200, CONCURRENCY)
    before = _cpu_s(pid)
    statuses += await closed_loop(session, url, headers, REQUESTS, CONCURRENCY)
    used = _cpu_s(pid) - before
    assert set(statuses) == {200}, set(statuses)
    return used / REQUESTS


async def test_cpu_per_request_with_and_without_the_http_metrics(cloud):
    api, _ = await new_project(cloud)
    sid = await active_server(api, name="bench-metrics")
    ports = infra.free_ports(5)
    # The stack API's own environment (the same settings, logging included), other ports.
    env = {**cloud.stack.env, **cloud.stack.services["api"].env_extra,
           "NIMBUS_API_PORT": str(ports[0]), "NIMBUS_IDENTITY_PORT": str(ports[1]),
           "NIMBUS_API_IMAGE_PORT": str(ports[2]), "NIMBUS_API_NETWORK_PORT": str(ports[3]),
           "NIMBUS_API_BLOCK_STORAGE_PORT": str(ports[4])}
    bare = await asyncio.create_subprocess_exec(sys.executable, "-c", _WITHOUT_METRICS,
                                                env=env, cwd=cloud.stack.cwd,
                                                stdout=subprocess.DEVNULL)
    bare_url = f"http://127.0.0.1:{ports[0]}"
    try:
        async with aiohttp.ClientSession() as session:
            async def bare_up() -> bool:
                try:
                    async with session.get(bare_url + "/healthz") as r:
                        return r.status == 200
                except aiohttp.ClientConnectionError:
                    return False
            await eventually(bare_up, timeout=60)
            headers = {"X-Auth-Token": api.token}
            path = api.path(f"/servers/{sid}")
            stack_pid = cloud.stack.pid("api")
            assert stack_pid is not None
            results = {}
            for label, pid, base in (("without", bare.pid, bare_url),
                                     ("with", stack_pid, cloud.api_url),
                                     ("without (again)", bare.pid, bare_url),
                                     ("with (again)", stack_pid, cloud.api_url)):
                results[label] = await _cpu_per_request(session, pid, base + path, headers)
        without = (results["without"] + results["without (again)"]) / 2
        with_ = (results["with"] + results["with (again)"]) / 2
        print(f"\nCPU per GET /v2/{{project_id}}/servers/{{id}} ({REQUESTS} requests, "
              f"{CONCURRENCY} at a time, each measured twice):")
        for label, cpu in results.items():
            print(f"  {label:16} {cpu * 1e6:8.0f} us")
        print(f"  ratio with/without: {with_ / without:.3f} "
              f"({(with_ - without) * 1e6:+.0f} us per request)")
    finally:
        bare.terminate()
        await asyncio.wait_for(bare.wait(), 30)
        await delete_and_wait(api, sid)
