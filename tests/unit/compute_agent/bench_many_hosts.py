"""What one agent process simulating many hosts costs: RSS per guest kept in memory
and, given a database, the CPU of one reconcile pass over all its hosts. Prints
figures; asserts nothing (not a test).

    .venv/bin/python -m tests.unit.compute_agent.bench_many_hosts [HOSTS] [GUESTS] [DB_URL]

Defaults: 334 hosts and 33,000 guests (an agent's share of 100,000 servers on 1,000
hosts). Each guest's spec is decoded from JSON, as a build's message brings it, so
it shares no objects with the others. DB_URL names an empty database the script may
migrate and fill (servers and host rows); PostgreSQL's CPU is read from /proc for
the backends of that database, so run it on this machine's server.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
import uuid

import msgspec

from services.compute_agent.agent import ComputeAgent, host_names, report_hosts
from services.compute_agent.drivers import GuestSpec
from services.compute_agent.drivers.fake import FakeDriver, FakeSettings
from services.compute_agent.reconcile import Reconciler, ReconcileSettings
from services.compute_agent.settings import ComputeSettings, Settings
from shared.config import AmqpSettings, DatabaseSettings, HealthSettings, LogSettings
from shared.contracts.common import FlavorSpec, ImageSpec, Port
from tests.unit.compute_agent.guests import guest_spec

FLAVOR = FlavorSpec(id="100", name="standard.xsmall", ram_mb=1024, disk_gb=30, vcpus=1)
IMAGE = ImageSpec(id=uuid.uuid4(), name="Ubuntu Server 12.04.3 LTS (amd64 20140204)",
                  size_bytes=2 << 30, location=f"{uuid.uuid4()}.raw")


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def _cpu_s(pid: int | None = None) -> float:
    if pid is None:
        t = os.times()
        return t.user + t.system
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backends(database: str) -> list[int]:
    """The PostgreSQL backends connected to ``database`` (their process titles name it)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline") as f:
                title = f.read().replace("\0", " ")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            pids.append(int(pid))
    return pids


async def _spawn(drivers: list[FakeDriver], n: int) -> list[tuple[uuid.UUID, str]]:
    encode, decode = msgspec.json.Encoder().encode, msgspec.json.Decoder(GuestSpec).decode
    placed = []
    for i in range(n):
        port = Port(id=uuid.uuid4(), network_id=uuid.uuid4(), network_name="private",
                    address=f"10.0.{i // 250 % 256}.{i % 250 + 2}",
                    mac=f"fa:16:3e:00:{i >> 8 & 255:02x}:{i & 255:02x}", cidr="10.0.0.0/16",
                    gateway="10.0.0.1")
        spec = guest_spec(server_id=uuid.uuid4(), name=f"bench-{i}", flavor=FLAVOR, image=IMAGE,
                          ports=(port,), admin_pass="secret")
        driver = drivers[i % len(drivers)]
        await driver.spawn(decode(encode(spec)))
        placed.append((spec.server_id, driver.fake_host.host))
    return placed


async def _reconcile(db_url: str, settings: Settings, drivers: list[FakeDriver],
                     placed: list[tuple[uuid.UUID, str]]) -> None:
    from shared.db.migrate import apply_migrations
    from shared.db.pool import create_pool
    from shared.worker import Worker
    await apply_migrations(db_url)
    worker = Worker("bench", database=settings.database, amqp=settings.amqp,
                    health=settings.health)
    worker.pool = await create_pool(DatabaseSettings(url=db_url))
    try:
        agents = [ComputeAgent(settings, worker, d, host=d.fake_host.host) for d in drivers]
        await report_hosts(worker, agents, starting=True)
        async with worker.pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO servers (id, project_id, user_id, name, image_id, flavor_id, flavor,"
                " vm_state, power_state, host, availability_zone, reservation_id)"
                " VALUES ($1, 'bench', 'bench', 'vm', $3, '100', $4, 'active', 1, $2, 'az1', 'r')"
                " ON CONFLICT DO NOTHING",
                [(sid, host, IMAGE.id, msgspec.to_builtins(FLAVOR)) for sid, host in placed])
            database = await conn.fetchval("SELECT current_database()")
        reconciler = Reconciler(agents, ReconcileSettings())
        backends = _backends(database)
        agent0, pg0, wall0 = _cpu_s(), sum(map(_cpu_s, backends)), time.perf_counter()
        steps = await reconciler.reconcile()
        print(f"one reconcile pass over {len(placed)} servers on {len(agents)} hosts: "
              f"{time.perf_counter() - wall0:.2f} s wall, {_cpu_s() - agent0:.2f} CPU-s here, "
              f"{sum(map(_cpu_s, backends)) - pg0:.2f} CPU-s in PostgreSQL; steps {steps}")
    finally:
        await worker.pool.close()


async def _run(hosts: int, guests: int, db_url: str | None) -> None:
    settings = Settings(database=DatabaseSettings(url=db_url or ""), amqp=AmqpSettings(),
                        log=LogSettings(), health=HealthSettings(),
                        compute=ComputeSettings(host="bench", hosts=hosts),
                        fake=FakeSettings(ram_mb=1 << 30, spawn_delay_s=0, state_dir=""))
    gc.collect()
    base = _rss_mb()
    drivers = [FakeDriver(settings.fake, host=h) for h in host_names("bench", hosts)]
    gc.collect()
    with_hosts = _rss_mb()
    started = _cpu_s()
    placed = await _spawn(drivers, guests)
    spawn_us = (_cpu_s() - started) / guests * 1e6
    gc.collect()
    after = _rss_mb()
    print(f"{hosts} hosts, {guests} guests in memory: RSS {base:.0f} MB, {with_hosts:.0f} MB with "
          f"the hosts, {after:.0f} MB with the guests ({(after - with_hosts) * 2**20 / guests:.0f} "
          f"bytes a guest); spawn {spawn_us:.0f} CPU-us a guest")
    if db_url:
        await _reconcile(db_url, settings, drivers, placed)


def main(argv: list[str]) -> None:
    hosts = int(argv[0]) if argv else 334
    guests = int(argv[1]) if len(argv) > 1 else 33000
    asyncio.run(_run(hosts, guests, argv[2] if len(argv) > 2 else None))


if __name__ == "__main__":
    main(sys.argv[1:])
