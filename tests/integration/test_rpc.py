"""The RPC layer and its delivery rules against a real RabbitMQ vhost."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import asyncpg
import msgspec
import pytest

from shared.errors import BadRequest, RemoteError, RpcTimeout, ServerNotFound, ServiceUnavailable
from shared.retry import RetryPolicy
from shared.rpc import RpcClient, RpcServer, connect
from shared.rpc.server import CallContext, dead_letter_queue


class Echo(msgspec.Struct, tag="echo", frozen=True):
    text: str


class Fail(msgspec.Struct, tag="fail", frozen=True):
    kind: str


class Wait(msgspec.Struct, tag="wait", frozen=True):
    token: str


Msg = Echo | Fail | Wait

FAST = RetryPolicy(first_delay_s=0.01, max_delay_s=0.05, deadline_s=0.5)


class Answer(msgspec.Struct, frozen=True):
    text: str
    request_id: str | None


@pytest.fixture
async def conn(amqp_url):
    connection = await connect(amqp_url)
    yield connection
    await connection.close()


@pytest.fixture
async def client(conn):
    c = RpcClient(conn, timeout=5)
    await c.start()
    yield c
    await c.close()


def _queue() -> str:
    return f"test.{uuid.uuid4().hex[:8]}"


async def _handler(msg, ctx: CallContext):
    if isinstance(msg, Echo):
        return Answer(text=msg.text.upper(), request_id=ctx.request_id)
    if isinstance(msg, Fail):
        if msg.kind == "known":
            raise ServerNotFound("abc")
        if msg.kind == "database":
            raise asyncpg.CannotConnectNowError("the database system is starting up")
        raise ZeroDivisionError("boom: secret internals")
    raise AssertionError(msg)


async def _dead_letters(conn, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    channel = await conn.channel()
    try:
        q = await channel.declare_queue(dead_letter_queue(queue), durable=True)
        got = []
        while (m := await q.get(no_ack=True, fail=False)) is not None:
            got.append(m)
        return got
    finally:
        await channel.close()


async def _await_dead_letters(conn, queue: str, timeout: float = 10.0) -> list:
    """The dead letters of ``queue`` once there are some (polled: they are published
    by the server's task, after the handler gave up)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (letters := await _dead_letters(conn, queue)):
        assert asyncio.get_running_loop().time() < deadline, f"no dead letter in {timeout} s"
        await asyncio.sleep(0.05)
    return letters


async def test_call_returns_the_typed_result_and_carries_the_request_id(conn, client):
    queue = _queue()
    server = RpcServer(conn, queue, Msg, _handler)
    await server.start()
    try:
        answer = await client.call(queue, Echo("hi"), Answer, request_id="req-rpc-test")
        assert answer == Answer(text="HI", request_id="req-rpc-test")
    finally:
        await server.stop()


async def test_known_errors_come_back_as_themselves_others_without_their_text(conn, client):
    queue = _queue()
    server = RpcServer(conn, queue, Msg, _handler)
    await server.start()
    try:
        with pytest.raises(ServerNotFound, match="Instance abc could not be found"):
            await client.call(queue, Fail("known"), Answer, request_id=None)
        with pytest.raises(RemoteError) as err:
            await client.call(queue, Fail("unknown"), Answer, request_id=None)
        # What crosses the broker may reach a tenant: no exception text.
        assert "boom" not in err.value.message and "ZeroDivision" not in err.value.message
        # A transient failure of a call's handler is the caller's to retry: 503-shaped.
        with pytest.raises(ServiceUnavailable):
            await client.call(queue, Fail("database"), Answer, request_id=None)
        # The server survives all of them and keeps answering.
        assert (await client.call(queue, Echo("ok"), Answer, request_id=None)).text == "OK"
    finally:
        await server.stop()


async def test_call_without_a_consumer_times_out_clearly(client):
    with pytest.raises(RpcTimeout, match=r"No reply from .* to Echo within 0.5 s"):
        await client.call(_queue(), Echo("anyone?"), Answer, request_id=None, timeout=0.5)


async def test_cast_waits_in_a_durable_queue_until_a_worker_comes(conn, client):
    queue = _queue()
    got: asyncio.Queue = asyncio.Queue()

    async def handler(msg, ctx):
        await got.put(msg)

    await client.cast(queue, Echo("later"), request_id=None)
    await client.cast(queue, Echo("later too"), request_id=None)
    server = RpcServer(conn, queue, Msg, handler)
    await server.start()
    try:
        received = {(await asyncio.wait_for(got.get(), 5)).text for _ in range(2)}
        assert received == {"later", "later too"}
    finally:
        await server.stop()


async def test_a_message_whose_worker_dies_is_delivered_again(amqp_url, client):
    queue = _queue()
    started = asyncio.Event()

    async def hangs(msg, ctx):
        started.set()
        await asyncio.sleep(3600)

    dying = await connect(amqp_url)
    first = RpcServer(dying, queue, Msg, hangs)
    await first.start()
    await client.cast(queue, Wait("work"), request_id="req-1")
    await asyncio.wait_for(started.wait(), 5)
    await dying.close()  # the worker dies before it acked

    got: asyncio.Queue = asyncio.Queue()

    async def handler(msg, ctx):
        await got.put((msg, ctx))

    survivor = await connect(amqp_url)
    second = RpcServer(survivor, queue, Msg, handler)
    await second.start()
    try:
        msg, ctx = await asyncio.wait_for(got.get(), 10)
        assert msg == Wait("work") and ctx.request_id == "req-1" and ctx.redelivered
    finally:
        await second.stop()
        await survivor.close()


async def test_a_cast_failing_transiently_is_retried_until_it_succeeds(conn, client):
    queue = _queue()
    tries: list[str] = []
    done = asyncio.Event()
    outages: list[int] = []

    async def flaky(msg, ctx):
        tries.append(msg.text)
        if len(tries) < 4:  # the database is restarting, three times in a row
            raise asyncpg.CannotConnectNowError("the database system is starting up")
        done.set()

    server = RpcServer(conn, queue, Msg, flaky, policy=RetryPolicy(
        first_delay_s=0.01, max_delay_s=0.05, deadline_s=30), on_transient=lambda: outages.append(1))
    await server.start()
    try:
        await client.cast(queue, Echo("build"), request_id=None)
        await asyncio.wait_for(done.wait(), 10)
        assert tries == ["build"] * 4 and len(outages) == 3
        assert await _dead_letters(conn, queue) == []
    finally:
        await server.stop()


async def test_a_cast_that_keeps_failing_transiently_gives_up_into_the_dead_letter_queue(
        conn, client):
    queue = _queue()
    given_up: asyncio.Queue = asyncio.Queue()

    async def down(msg, ctx):
        raise ConnectionRefusedError(111, "Connect call failed")

    async def give_up(msg, ctx, exc):
        await given_up.put((msg, ctx.request_id, type(exc).__name__))

    server = RpcServer(conn, queue, Msg, down, policy=FAST, give_up=give_up)
    await server.start()
    try:
        await client.cast(queue, Echo("doomed"), request_id="req-doomed")
        assert await asyncio.wait_for(given_up.get(), 10) == (
            Echo("doomed"), "req-doomed", "ConnectionRefusedError")
        (letter,) = await _await_dead_letters(conn, queue)
        assert msgspec.json.decode(letter.body, type=Msg) == Echo("doomed")
        assert letter.headers["x-nimbus-dead-queue"] == queue
        assert "0.5 s of transient failures" in letter.headers["x-nimbus-dead-reason"]
        assert letter.headers["x-compute-request-id"] == "req-doomed"
    finally:
        await server.stop()


async def test_a_cast_failing_permanently_is_tried_once_then_dead_lettered(conn, client):
    queue = _queue()
    tries: list[object] = []

    async def buggy(msg, ctx):
        tries.append(msg)
        raise ZeroDivisionError("a bug")

    server = RpcServer(conn, queue, Msg, buggy, policy=FAST)
    await server.start()
    try:
        await client.cast(queue, Echo("x"), request_id=None)
        (letter,) = await _await_dead_letters(conn, queue)
        assert letter.headers["x-nimbus-dead-reason"] == "permanent error: ZeroDivisionError"
        assert tries == [Echo("x")]
    finally:
        await server.stop()


async def test_an_undecodable_message_is_dead_lettered_and_the_server_goes_on(conn, client):
    queue = _queue()
    server = RpcServer(conn, queue, Msg, _handler)
    await server.start()
    try:
        channel = await conn.channel()
        await channel.default_exchange.publish(aio_pika.Message(b'{"type": "nope"}'),
                                               routing_key=queue)
        await channel.close()
        assert (await client.call(queue, Echo("still here"), Answer,
                                  request_id=None)).text == "STILL HERE"
        (letter,) = await _await_dead_letters(conn, queue)
        assert letter.body == b'{"type": "nope"}'
        assert letter.headers["x-nimbus-dead-reason"].startswith("undecodable")
    finally:
        await server.stop()


async def test_bad_request_from_a_handler_keeps_its_message(conn, client):
    queue = _queue()

    async def refuses(msg, ctx):
        raise BadRequest("Network 42 could not be found.")

    server = RpcServer(conn, queue, Msg, refuses)
    await server.start()
    try:
        with pytest.raises(BadRequest) as err:
            await client.call(queue, Echo("x"), Answer, request_id=None)
        assert err.value.message == "Network 42 could not be found."
        assert err.value.http_status == 400
    finally:
        await server.stop()
