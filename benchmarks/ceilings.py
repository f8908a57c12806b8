"""This machine's ceilings: the least any service built of these parts can cost.

Four programs, each as small as it can be, written with the libraries Nimbus is
written with and run on the same PostgreSQL and RabbitMQ, with the same rules
(durable queues, persistent messages, publisher confirms, ack after handling):

(a) ``http``: an aiohttp handler that answers ``ok``;
(b) ``db``: an aiohttp handler that selects one row by primary key (asyncpg
    pool) and answers it as JSON;
(c) ``rpc-server`` + ``rpc-client``: an aio-pika call and its reply;
(d) ``pipe-a`` -> ``pipe-b`` -> ``pipe-c``: a two-hop pipeline. A answers
    ``POST /`` with 202 once it cast the request to B; B casts it on to C; C
    inserts one row. An operation is done when its row is in the table.

Each runs as a process of its own (``python -m benchmarks.ceilings ROLE ...``)
so that its CPU can be read from /proc; it prints ``ready`` once it listens
or consumes. The HTTP ones run as many processes as the API has, sharing the
port (SO_REUSEPORT), so that their throughput compares with the API's. The
harness that starts and drives them is ``benchmarks.ceilings_run``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid

import aio_pika
import asyncpg
from aiohttp import web

RPC_QUEUE = "ceiling.rpc"
PIPE_B, PIPE_C = "ceiling.pipe.b", "ceiling.pipe.c"
PREFETCH = 16  # as shared.rpc.server's default
ROWS = 1000

SCHEMA = f"""
CREATE TABLE ceiling_rows (id integer PRIMARY KEY, name text NOT NULL, payload jsonb NOT NULL);
INSERT INTO ceiling_rows
SELECT g, 'row-' || g, jsonb_build_object('n', g) FROM generate_series(1, {ROWS}) AS g;
CREATE TABLE ceiling_pipe (id uuid PRIMARY KEY, n integer NOT NULL,
                           created_at timestamptz NOT NULL DEFAULT now());
"""


def _ready() -> None:
    print("ready", flush=True)


async def _serve(app: web.Application, port: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
    _ready()
    await asyncio.Event().wait()


async def http(args: argparse.Namespace) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    await _serve(app, args.port)


async def db(args: argparse.Namespace) -> None:
    pool = await asyncpg.create_pool(args.dsn, min_size=4, max_size=10)

    async def row(request: web.Request) -> web.Response:
        async with pool.acquire() as conn:
            r = await conn.fetchrow("SELECT id, name, payload FROM ceiling_rows WHERE id = $1",
                                    int(request.match_info["id"]))
        if r is None:
            raise web.HTTPNotFound()
        return web.json_response({"row": {"id": r["id"], "name": r["name"],
                                          "payload": r["payload"]}})

    app = web.Application()
    app.router.add_get("/rows/{id}", row)
    await _serve(app, args.port)


async def _channel(url: str) -> tuple[aio_pika.abc.AbstractConnection,
                                      aio_pika.abc.AbstractChannel]:
    conn = await aio_pika.connect_robust(url)
    channel = await conn.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=PREFETCH)
    return conn, channel


def _persistent(body: bytes, **kw: str) -> aio_pika.Message:
    return aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, **kw)


async def rpc_server(args: argparse.Namespace) -> None:
    _, channel = await _channel(args.amqp)
    queue = await channel.declare_queue(RPC_QUEUE, durable=True)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        request = json.loads(message.body)
        reply = json.dumps({"result": request["n"] + 1}).encode()
        await channel.default_exchange.publish(
            aio_pika.Message(reply, correlation_id=message.correlation_id),
            routing_key=message.reply_to or "")
        await message.ack()

    await queue.consume(on_message)
    _ready()
    await asyncio.Event().wait()


async def rpc_client(args: argparse.Namespace) -> None:
    """``-n`` calls, ``-c`` at a time; prints the elapsed time as JSON, then stays
    until stdin closes (so the harness reads its CPU while it is still alive)."""
    _, channel = await _channel(args.amqp)
    await channel.declare_queue(RPC_QUEUE, durable=True)
    replies = await channel.declare_queue(exclusive=True, auto_delete=True)
    waiting: dict[str, asyncio.Future[bytes]] = {}

    async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        future = waiting.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message.body)

    await replies.consume(on_reply, no_ack=True)
    todo = iter(range(args.n))
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for n in todo:
            cid = uuid.uuid4().hex
            reply = waiting[cid] = asyncio.get_running_loop().create_future()
            await channel.default_exchange.publish(
                _persistent(json.dumps({"n": n}).encode(), correlation_id=cid,
                            reply_to=replies.name), routing_key=RPC_QUEUE)
            if json.loads(await reply).get("result") != n + 1:
                errors += 1

    _ready()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.c)))
    print(json.dumps({"elapsed_s": time.perf_counter() - started, "errors": errors}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def pipe_a(args: argparse.Namespace) -> None:
    _, channel = await _channel(args.amqp)
    await channel.declare_queue(PIPE_B, durable=True)

    async def op(request: web.Request) -> web.Response:
        body = await request.read()
        await channel.default_exchange.publish(_persistent(body), routing_key=PIPE_B)
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/", op)
    await _serve(app, args.port)


async def pipe_b(args: argparse.Namespace) -> None:
    _, channel = await _channel(args.amqp)
    queue = await channel.declare_queue(PIPE_B, durable=True)
    await channel.declare_queue(PIPE_C, durable=True)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await channel.default_exchange.publish(_persistent(message.body), routing_key=PIPE_C)
        await message.ack()

    await queue.consume(on_message)
    _ready()
    await asyncio.Event().wait()


async def pipe_c(args: argparse.Namespace) -> None:
    _, channel = await _channel(args.amqp)
    queue = await channel.declare_queue(PIPE_C, durable=True)
    pool = await asyncpg.create_pool(args.dsn, min_size=4, max_size=10)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        request = json.loads(message.body)
        async with pool.acquire() as conn:
            await conn.execute("INSERT INTO ceiling_pipe (id, n) VALUES ($1, $2)",
                               uuid.UUID(request["id"]), request["n"])
        await message.ack()

    await queue.consume(on_message)
    _ready()
    await asyncio.Event().wait()


ROLES = {"http": http, "db": db, "rpc-server": rpc_server, "rpc-client": rpc_client,
         "pipe-a": pipe_a, "pipe-b": pipe_b, "pipe-c": pipe_c}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ceilings")
    p.add_argument("role", choices=sorted(ROLES))
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--dsn", default="")
    p.add_argument("--amqp", default="")
    p.add_argument("-n", type=int, default=1000)
    p.add_argument("-c", type=int, default=16)
    args = p.parse_args(argv)
    asyncio.run(ROLES[args.role](args))


if __name__ == "__main__":
    main()
