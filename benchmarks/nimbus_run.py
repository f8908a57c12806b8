"""The Nimbus measures, driven through the compute API as a user would.

Servers are waited for in the database (``Watch``: one query for every server
being waited on, every ``interval`` seconds), never with a GET per server, so
that waiting costs the API nothing and PostgreSQL little. Every server of the
bench lives in one project (``BenchProject``) with unlimited quotas and rate
limits loosened, so that a boot's cost includes whatever grows with the
project. Where the project's default network cannot hold them all (a /24
today) it gets further /16 networks and every create names one.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.drive import closed_loop
from benchmarks.procs import Groups, Measured, Meter
from services.api.catalog import CIRROS_IMAGE_ID
from tests.e2e.client import Api, Cloud
from tests.e2e.projects import manage

FLAVOR = "100"  # standard.xsmall: 1 GB, 1 vCPU
NET_ADDRESSES = 65533  # a /16's server addresses


class Watch:
    """Futures resolved when a server's ``vm_state`` satisfies a condition."""

    def __init__(self, db: asyncpg.Connection, interval: float) -> None:
        self._db, self._interval = db, interval
        self._waiting: dict[uuid.UUID, tuple[Callable[[str], bool], asyncio.Future[str]]] = {}
        self._task: asyncio.Task | None = None

    def until(self, sid: str, done: Callable[[str], bool]) -> asyncio.Future[str]:
        future = asyncio.get_running_loop().create_future()
        self._waiting[uuid.UUID(sid)] = (done, future)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll())
        return future

    async def _poll(self) -> None:
        try:
            while self._waiting:
                await asyncio.sleep(self._interval)
                rows = await self._db.fetch(
                    "SELECT id, vm_state FROM servers WHERE id = ANY($1::uuid[])",
                    list(self._waiting))
                for row in rows:
                    done, future = self._waiting[row["id"]]
                    if done(row["vm_state"]):
                        del self._waiting[row["id"]]
                        future.set_result(row["vm_state"])
        except Exception as exc:  # noqa: BLE001 (every waiter hears of it, none waits forever)
            for _, future in self._waiting.values():
                future.set_exception(exc)
            self._waiting.clear()


def built(state: str) -> bool:
    return state in ("active", "error")


def deleted(state: str) -> bool:
    return state == "deleted"


class BenchProject:
    """The bench's project: its API handle, database connection, networks."""

    def __init__(self, cloud: Cloud, api: Api, db: asyncpg.Connection,
                 networks: list[str]) -> None:
        self.cloud, self.api, self.db, self.networks = cloud, api, db, networks
        self.created = 0  # creates asked for so far, for the choice of network
        self.session = aiohttp.ClientSession(headers={"X-Auth-Token": api.token})

    @classmethod
    async def make(cls, cloud: Cloud, servers: int) -> BenchProject:
        """A project that may hold ``servers`` servers (and a margin for the churn)."""
        name = f"bench-{uuid.uuid4().hex[:6]}"
        await manage(cloud, "create-project", name)
        await manage(cloud, "create-user", name, "--password", "pw", "--project", name)
        for key in ("maxTotalInstances", "maxTotalRAMSize", "maxTotalCores"):
            await manage(cloud, "set-quota", name, key, "-1")
        for verb, uri, regex in (("POST", "*", ".*"), ("POST", "*/servers", "^/servers"),
                                 ("DELETE", "*", ".*"), ("GET", "*changes-since*",
                                                         ".*changes-since.*")):
            await manage(cloud, "set-rate-limit", name, verb, uri, regex, "1000000", "MINUTE")
        api = await cloud.login(name, "pw", name)
        db = await cloud.db()
        self = cls(cloud, api, db, [])
        sid = await self.boot_one("bench-first")  # makes the default network
        await Watch(db, 0.05).until(sid, built)
        bits = await db.fetchval("SELECT masklen(cidr) FROM networks WHERE project_id = $1 "
                                 "AND is_default", api.project_id)
        if 2 ** (32 - bits) - 3 < servers + 5000:
            for i in range(-(-(servers + 5000) // NET_ADDRESSES)):
                out = await manage(cloud, "create-network", name, f"bench-{i}",
                                   "--cidr", f"10.{200 + i}.0.0/16")
                self.networks.append(out.stdout.split(" id ")[1].split()[0])
        return self

    async def close(self) -> None:
        await self.session.close()
        await self.db.close()

    def url(self, rest: str) -> str:
        return self.cloud.api_url + self.api.path(rest)

    def body(self, name: str, count: int = 1) -> dict[str, Any]:
        server: dict[str, Any] = {"name": name, "imageRef": str(CIRROS_IMAGE_ID),
                                  "flavorRef": FLAVOR}
        if self.networks:
            net = self.networks[min(self.created // (NET_ADDRESSES - 2000), len(self.networks) - 1)]
            server["networks"] = [{"uuid": net}]
        if count > 1:
            server.update(min_count=count, max_count=count)
        self.created += count
        return {"server": server}

    async def boot_one(self, name: str) -> str:
        async with self.session.post(self.url("/servers"), json=self.body(name)) as r:
            assert r.status == 202, await r.text()
            return (await r.json())["server"]["id"]

    async def delete(self, sid: str) -> None:
        async with self.session.delete(self.url(f"/servers/{sid}")) as r:
            assert r.status == 204, await r.text()

    async def count(self, *states: str) -> int:
        return await self.db.fetchval("SELECT count(*) FROM servers WHERE project_id = $1 "
                                      "AND vm_state = ANY($2::text[])", self.api.project_id,
                                      list(states))


def service_groups(cloud: Cloud, base: Groups) -> Groups:
    groups = Groups(dict(base.roots), dict(base.kinds))
    for name in cloud.stack.services:
        pid = cloud.stack.pid(name)
        assert pid is not None, f"service {name} is not running"
        groups.add(name, "services", pid)
    return groups


async def reads(p: BenchProject, groups: Groups, key: str, label: str, rest: str, n: int,
                concurrency: int, xml: bool = False) -> Measured:
    """``n`` GETs of ``rest`` (in XML if asked), ``concurrency`` at a time."""
    headers = {"Accept": "application/xml"} if xml else {}
    await closed_loop(p.session, p.url(rest), headers, min(100, n), concurrency)  # warm up
    latencies: list[float] = []
    with Meter(groups).measure() as window:
        statuses = await closed_loop(p.session, p.url(rest), headers, n, concurrency,
                                     latencies=latencies)
        window.done(n)
    assert statuses == [200] * n, set(statuses)
    return Measured(key, label, window.usage, n / window.usage.wall_s,
                    {"latency_p50_ms": 1000 * statistics.median(latencies),
                     "concurrency": concurrency})


async def _scheduler_metrics(cloud: Cloud,
                             session: aiohttp.ClientSession) -> tuple[float, float, float, float]:
    """(schedule_build messages handled, seconds spent handling them, CPU seconds
    spent choosing hosts, choices made) so far."""
    url = cloud.stack.services["scheduler"].health_url.replace("/healthz", "/metrics")
    async with session.get(url) as r:
        text = await r.text()
    handled = seconds = choice_s = choices = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "nimbus_scheduler_decision_cpu_seconds_sum":
                choice_s += s.value
            elif s.name == "nimbus_scheduler_decision_cpu_seconds_count":
                choices += s.value
            if s.labels.get("message") != "schedule_build":
                continue
            if s.name == "nimbus_rpc_handled_total":
                handled += s.value
            elif s.name == "nimbus_rpc_handled_duration_seconds_sum":
                seconds += s.value
    return handled, seconds, choice_s, choices


async def boots(p: BenchProject, groups: Groups, key: str, label: str, n: int,
                in_flight: int) -> tuple[Measured, Measured]:
    """``n`` creates, ``in_flight`` at a time, until all are ACTIVE; and what the
    scheduler spent on each (its CPU over the builds it handled)."""
    watch = Watch(p.db, 0.1)
    todo, waits = iter(range(n)), []

    async def worker() -> None:
        for i in todo:
            waits.append(watch.until(await p.boot_one(f"{key}-{i}"), built))

    handled0, seconds0, choice0, choices0 = await _scheduler_metrics(p.cloud, p.session)
    with Meter(groups).measure() as window:
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        states = await asyncio.gather(*waits)
        window.done(n)
    handled1, seconds1, choice1, choices1 = await _scheduler_metrics(p.cloud, p.session)
    assert states == ["active"] * n, {s: states.count(s) for s in set(states)}
    usage = window.usage
    boot = Measured(key, label, usage, n / usage.wall_s, {"in_flight": in_flight})
    decisions = handled1 - handled0
    sched_cpu = sum(v for g, v in usage.by_group.items() if g.startswith("scheduler"))
    sched = Measured(f"{key}_scheduler", "scheduling decision", usage, decisions / usage.wall_s,
                     {"decisions": decisions,
                      # Choosing the host (filters and weighers over the view of every
                      # host), the scheduler's own measure (thread CPU clock) ...
                      "choice_cpu_ms": 1000 * (choice1 - choice0) / max(choices1 - choices0, 1),
                      # ... and all the scheduler process spent per build (reading the
                      # server, the claim and placement, the cast, events, logs).
                      "scheduler_cpu_ms_per_decision": 1000 * sched_cpu / max(decisions, 1),
                      "handled_ms_mean": 1000 * (seconds1 - seconds0) / max(decisions, 1)})
    return boot, sched


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def churn(p: BenchProject, groups: Groups, cycles: int, in_flight: int) -> Measured:
    """Boot, wait ACTIVE, delete, wait gone: ``cycles`` times, ``in_flight`` at once."""
    watch = Watch(p.db, 0.02)
    todo, boot_s, cycle_s, states = iter(range(cycles)), [], [], []

    async def worker() -> None:
        for i in todo:
            started = time.perf_counter()
            sid = await p.boot_one(f"churn-{i}")
            states.append(await watch.until(sid, built))
            boot_s.append(time.perf_counter() - started)
            await p.delete(sid)
            await watch.until(sid, deleted)
            cycle_s.append(time.perf_counter() - started)

    with Meter(groups).measure() as window:
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        window.done(cycles)
    assert states == ["active"] * cycles, {s: states.count(s) for s in set(states)}
    return Measured("churn", f"boot+delete churn, {in_flight} in flight", window.usage,
                    cycles / window.usage.wall_s,
                    {"boot_p50_s": _pct(boot_s, 0.5), "boot_p99_s": _pct(boot_s, 0.99),
                     "cycle_p50_s": _pct(cycle_s, 0.5), "cycle_p99_s": _pct(cycle_s, 0.99),
                     "in_flight": in_flight})


async def populate(p: BenchProject, target: int, *, batch: int = 500,
                   max_building: int = 3000) -> dict[str, float]:
    """Grow the project to ``target`` live servers with multiple creates (``batch``
    servers each), never more than ``max_building`` building at once; prints its
    progress and returns how long it took."""
    started = last = time.monotonic()
    have = await p.count("active", "building")
    first = have
    while have < target:
        if await p.count("building") < max_building:
            count = min(batch, target - have)
            async with p.session.post(p.url("/servers"),
                                      json=p.body(f"pop-{have}", count)) as r:
                assert r.status == 202, await r.text()
            have += count
        else:
            await asyncio.sleep(0.5)
        if time.monotonic() - last > 15:
            last = time.monotonic()
            active = await p.count("active")
            rate = (active - first) / max(last - started, 1e-9)
            eta = (target - active) / rate if rate > 0 else float("inf")
            print(f"  [populate] {active:,} of {target:,} ACTIVE, {rate:.0f}/s, "
                  f"about {eta / 60:.1f} min to go", flush=True)
    while await p.count("building") > 0:
        await asyncio.sleep(0.5)
    errors = await p.count("error")
    assert errors == 0, f"{errors} servers in ERROR while populating"
    elapsed = time.monotonic() - started
    print(f"  [populate] {target:,} servers present; {target - first:,} booted in "
          f"{elapsed / 60:.1f} min ({(target - first) / elapsed:.0f}/s)", flush=True)
    return {"servers": target, "booted": target - first, "seconds": elapsed}
