"""Starting and driving the ceilings of ``benchmarks.ceilings``, one after another.

Each ceiling gets a database of its own on the cloud's PostgreSQL server and a
vhost of its own on its RabbitMQ; its processes are started, warmed up, driven
while the CPU of every group is read (``benchmarks.procs``), and stopped. The
CPU reported is that of the ceiling's processes, PostgreSQL and RabbitMQ (kind
``ceiling``, ``postgresql``, ``rabbitmq``); the load generator's (this process)
is reported apart, as for Nimbus.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import asyncpg

from benchmarks.ceilings import SCHEMA
from benchmarks.drive import closed_loop
from benchmarks.procs import Groups, Measured, Meter
from deploy.local import infra as local_infra

REPO = Path(__file__).resolve().parents[1]


@asynccontextmanager
async def _processes(argvs: list[list[str]]) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """``python -m benchmarks.ceilings ARGV`` for each, once each printed ``ready``."""
    procs = []
    try:
        for argv in argvs:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.ceilings", *argv, cwd=REPO,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            procs.append(proc)
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line.strip() == b"ready", f"ceiling {argv[0]} did not start: {line!r}"
        yield procs
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            await proc.wait()


class Ceilings:
    """The four ceilings on ``infra``'s servers; ``base`` holds the PostgreSQL and
    RabbitMQ groups, ``workers`` is how many processes the HTTP ones run."""

    def __init__(self, infra, base: Groups, workers: int) -> None:
        self._infra = infra
        self._base = base
        self._workers = workers

    def _groups(self, procs: list[asyncio.subprocess.Process], names: list[str]) -> Groups:
        groups = Groups(dict(self._base.roots), dict(self._base.kinds))
        for proc, name in zip(procs, names):
            groups.add(f"ceiling {name}", "ceiling", proc.pid)
        return groups

    @asynccontextmanager
    async def _resources(self) -> AsyncIterator[tuple[str, str]]:
        name = f"ceiling_{uuid.uuid4().hex[:12]}"
        dsn = await self._infra.create_database(name)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(SCHEMA)
        finally:
            await conn.close()
        amqp = await self._infra.new_vhost()
        try:
            yield dsn, amqp
        finally:
            await self._infra.drop_vhost(amqp)
            await self._infra.drop_database(name)

    async def _http(self, key: str, label: str, argv: list[str], path, n: int,
                    concurrency: int) -> Measured:
        port = local_infra.free_ports(1)[0]
        names = [f"{argv[0]}-{i + 1}" for i in range(self._workers)]
        async with _processes([[*argv, "--port", str(port)]] * self._workers) as procs:
            url = (lambda i: f"http://127.0.0.1:{port}{path(i)}")
            async with aiohttp.ClientSession() as session:
                await closed_loop(session, url, {}, 200, concurrency)  # warm up
                with Meter(self._groups(procs, names)).measure() as window:
                    statuses = await closed_loop(session, url, {}, n, concurrency)
                    window.done(n)
        assert statuses == [200] * n, set(statuses)
        return Measured(key, label, window.usage, n / window.usage.wall_s)

    async def bare_http(self, n: int, concurrency: int) -> Measured:
        return await self._http("ceiling_http", "(a) aiohttp handler", ["http"],
                                lambda i: "/", n, concurrency)

    async def http_select(self, n: int, concurrency: int) -> Measured:
        async with self._resources() as (dsn, _):
            return await self._http("ceiling_select", "(b) aiohttp + asyncpg PK select",
                                    ["db", "--dsn", dsn], lambda i: f"/rows/{i % 1000 + 1}", n,
                                    concurrency)

    async def rpc(self, n: int, concurrency: int) -> Measured:
        async with self._resources() as (_, amqp):
            async with _processes([["rpc-server", "--amqp", amqp]]) as (server,):
                # A first short client warms the server and the broker's queue up.
                async with _processes([["rpc-client", "--amqp", amqp, "-n", "200", "-c",
                                        str(concurrency)]]) as (warm,):
                    assert warm.stdout is not None and warm.stdin is not None
                    await warm.stdout.readline()
                    warm.stdin.close()
                argv = ["rpc-client", "--amqp", amqp, "-n", str(n), "-c", str(concurrency)]
                async with _processes([argv]) as (client,):
                    assert client.stdout is not None and client.stdin is not None
                    groups = self._groups([server, client], ["rpc-server", "rpc-client"])
                    with Meter(groups).measure() as window:
                        out = json.loads(await client.stdout.readline())
                        window.done(n)
                    client.stdin.close()
        assert out["errors"] == 0, out
        return Measured("ceiling_rpc", "(c) aio-pika RPC call + reply", window.usage,
                        n / out["elapsed_s"], {"client_elapsed_s": out["elapsed_s"]})

    async def pipeline(self, n: int, concurrency: int) -> Measured:
        """(d): ``n`` POSTs to A, ``concurrency`` at a time; done when C wrote ``n`` rows."""
        async with self._resources() as (dsn, amqp):
            port = local_infra.free_ports(1)[0]
            argvs = [["pipe-c", "--amqp", amqp, "--dsn", dsn], ["pipe-b", "--amqp", amqp],
                     ["pipe-a", "--amqp", amqp, "--port", str(port)]]
            async with _processes(argvs) as procs, aiohttp.ClientSession() as session:
                conn = await asyncpg.connect(dsn)
                try:
                    url = f"http://127.0.0.1:{port}/"

                    def body(i: int) -> bytes:
                        return json.dumps({"id": str(uuid.uuid4()), "n": i}).encode()

                    async def rows() -> int:
                        return await conn.fetchval("SELECT count(*) FROM ceiling_pipe")

                    await closed_loop(session, url, {}, 200, concurrency, method="POST",
                                      body=body)
                    while await rows() < 200:
                        await asyncio.sleep(0.05)
                    groups = self._groups(procs, ["pipe-c", "pipe-b", "pipe-a"])
                    with Meter(groups).measure() as window:
                        statuses = await closed_loop(session, url, {}, n, concurrency,
                                                     method="POST", body=body)
                        while await rows() < n + 200:
                            await asyncio.sleep(0.05)
                        window.done(n)
                finally:
                    await conn.close()
        assert statuses == [202] * n, set(statuses)
        return Measured("ceiling_pipeline", "(d) cast, cast, one row written", window.usage,
                        n / window.usage.wall_s)
