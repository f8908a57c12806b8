"""``make bench`` / ``make bench-quick``: Nimbus beside this machine's ceilings.

One run, on a cloud of its own (every service a process, as ``make up`` runs
them, fake driver with no spawn delay, roomy hosts, INFO logs): first the
ceilings (``benchmarks.ceilings``), then Nimbus through its API (reads, boots,
churn, scheduling), then, at full scale, the cloud grown to 10,000 and to
``BENCH_SERVERS`` servers (default 100,000) for the big list, the boots at that
size and every service's memory. The report (``benchmarks.report``) is printed
and written under ``build/bench/<UTC time>/``, ``build/bench/latest`` its link.

Knobs (environment): ``BENCH_SCALE=quick|full``, ``BENCH_SERVERS`` (the big
population), ``BENCH_HOSTS`` (compute hosts; 1,000 by default where the agent
can simulate many, else one per agent). Nothing is a timed assertion: the test
checks that every measure was made, with no error and every server ACTIVE.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks import nimbus_run as nr
from benchmarks import report
from benchmarks.ceilings_run import Ceilings
from benchmarks.procs import Groups, listener_pid
from deploy.local.services import api_workers
from tests.e2e.client import Cloud, fresh_cloud

REPO = Path(__file__).resolve().parents[1]
QUICK = os.environ.get("BENCH_SCALE", "full") == "quick"
MANY_HOSTS = "compute_hosts" in inspect.signature(fresh_cloud).parameters


@dataclass(frozen=True)
class Scale:
    http: int = 20000          # requests of each HTTP ceiling and of GET server
    lists: int = 2000          # requests of each limit=100 list
    rpc: int = 20000
    pipeline: int = 10000
    boots: int = 1000
    in_flight: int = 50
    churn: int = 3000
    big_list: int = 30         # detail?limit=1000 requests, one at a time
    mid: int = 10000
    big: int = int(os.environ.get("BENCH_SERVERS", "100000"))
    hosts: int = int(os.environ.get("BENCH_HOSTS", "1000" if MANY_HOSTS else "3"))


SCALE = Scale(http=4000, lists=400, rpc=4000, pipeline=2000, churn=500, mid=0, big=0,
              hosts=int(os.environ.get("BENCH_HOSTS", "30" if MANY_HOSTS else "3"))) \
    if QUICK else Scale()

# Capacity for every server of the run on any host count: each host holds
# 100,000 of the 1 GB flavor.
BENCH_ENV = {
    "NIMBUS_FAKE_SPAWN_DELAY_S": "0",
    "NIMBUS_FAKE_DESTROY_DELAY_S": "0",
    "NIMBUS_FAKE_RAM_MB": str(100_000 * 1024),
    "NIMBUS_FAKE_VCPUS": "100000",
    "NIMBUS_FAKE_DISK_GB": str(100_000 * 20),
    "NIMBUS_LOG_LEVEL": "info",
}


@pytest.fixture(scope="module")
async def bench_cloud(infra, migrated_template) -> AsyncIterator[Cloud]:
    workers = api_workers(os.environ)
    kw = {"compute_hosts": SCALE.hosts} if MANY_HOSTS else {}
    async with fresh_cloud(infra, migrated_template, "bench", BENCH_ENV,
                           {"api": workers} if workers > 1 else None, **kw) as cloud:
        yield cloud


def _base_groups(infra) -> Groups:
    """PostgreSQL's postmaster and RabbitMQ's node, found by the ports they listen on."""
    from urllib.parse import urlsplit
    groups = Groups()
    for name, url in (("postgresql", infra.pg_admin_url), ("rabbitmq", infra.amqp_url)):
        pid = listener_pid(urlsplit(url).port or (5432 if name == "postgresql" else 5672))
        if pid is None:
            print(f"  (no {name} process found on this machine: its CPU is not counted)")
        else:
            groups.add(name, name, pid)
    return groups


async def test_bench(infra, bench_cloud: Cloud) -> None:
    started = time.monotonic()
    s = SCALE
    base = _base_groups(infra)
    workers = len(bench_cloud.processes("api"))
    results: dict[str, nr.Measured] = {}

    def keep(m: nr.Measured) -> None:
        results[m.key] = m
        print(f"  {m.label}: {m.ops_per_s:,.0f}/s, {m.cpu_ms():.2f} CPU-ms per op "
              f"({time.monotonic() - started:.0f} s in)", flush=True)

    print(f"\n[bench] {'quick' if QUICK else 'full'} scale; ceilings", flush=True)
    ceilings = Ceilings(infra, base, workers)
    keep(await ceilings.bare_http(s.http, 32))
    keep(await ceilings.http_select(s.http, 32))
    keep(await ceilings.rpc(s.rpc, 32))
    keep(await ceilings.pipeline(s.pipeline, s.in_flight))

    groups = nr.service_groups(bench_cloud, base)
    hosts = await bench_cloud.fetchval("SELECT count(*) FROM compute_hosts")
    p = await nr.BenchProject.make(bench_cloud, max(s.big, s.mid, 2 * s.boots))
    meta: dict = {"scale": "quick" if QUICK else "full", "hosts": hosts, "api_workers": workers,
                  "big": s.big, "machine": report.machine(), "populations": []}
    try:
        print(f"[bench] Nimbus: {hosts:,} hosts, {len(p.networks)} extra networks", flush=True)
        boot, sched = await nr.boots(p, groups, "boots_at_1k",
                                     f"create→ACTIVE, {s.boots:,} at {s.in_flight} in flight "
                                     f"(0 → {s.boots:,} servers)", s.boots, s.in_flight)
        keep(boot)
        sched.label = f"scheduling decision at {hosts:,} hosts"
        keep(sched)
        sid = (await p.api.get("/servers?limit=1")).json["servers"][0]["id"]
        keep(await nr.reads(p, groups, "get_server", "GET server", f"/servers/{sid}", s.http, 32))
        for key, rest, xml in (("servers_100", "/servers?limit=100", False),
                               ("servers_100_xml", "/servers?limit=100", True),
                               ("detail_100", "/servers/detail?limit=100", False),
                               ("detail_100_xml", "/servers/detail?limit=100", True)):
            label = f"GET {rest.split('?')[0].lstrip('/')} limit=100 {'XML' if xml else 'JSON'}"
            keep(await nr.reads(p, groups, key, label, rest, s.lists, 8, xml=xml))
        keep(await nr.churn(p, groups, s.churn, s.in_flight))
        if 0 < s.mid < s.big:
            meta["populations"].append(await nr.populate(p, s.mid))
            keep(await nr.reads(p, groups, "detail_1000_at_10k",
                                f"detail limit=1000, {s.mid:,} servers present",
                                "/servers/detail?limit=1000", s.big_list, 1))
        if s.big:
            meta["populations"].append(await nr.populate(p, s.big))
            keep(await nr.reads(p, groups, "detail_1000_at_big",
                                f"detail limit=1000, {s.big:,} servers present",
                                "/servers/detail?limit=1000", s.big_list, 1))
            big_boot, _ = await nr.boots(p, groups, "boots_at_big",
                                         f"create→ACTIVE, {s.boots:,} at {s.in_flight} in "
                                         f"flight ({s.big:,} servers present)",
                                         s.boots, s.in_flight)
            keep(big_boot)
        meta["memory_at"] = await p.count("active", "building", "error")
        meta["memory"] = {name: {**mem, "kind": groups.kinds[name]}
                          for name, mem in groups.memory().items()}
    except BaseException as exc:
        meta["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        raise
    finally:
        await p.close()
        meta["elapsed_min"] = (time.monotonic() - started) / 60
        meta["stamp"], meta["when"] = report.stamp()
        out = report.write(results, meta, REPO / "build" / "bench")
        print("\n" + (out / "bench.md").read_text())
        print(f"[bench] written to {out}/ (bench.md, bench.json, bench.png)")
    expected = {"ceiling_http", "ceiling_select", "ceiling_rpc", "ceiling_pipeline",
                "boots_at_1k", "boots_at_1k_scheduler", "get_server", "servers_100",
                "servers_100_xml", "detail_100", "detail_100_xml", "churn"}
    if s.big:
        expected |= {"detail_1000_at_big", "boots_at_big"}
    if 0 < s.mid < s.big:
        expected.add("detail_1000_at_10k")
    assert set(results) == expected
    assert all(m.usage.ops > 0 and m.ops_per_s > 0 for m in results.values())
    assert results["boots_at_1k_scheduler"].extra["decisions"] >= s.boots
    assert set(meta["memory"]) >= set(bench_cloud.stack.services)
