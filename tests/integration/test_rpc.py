"""The RPC layer against a real RabbitMQ vhost."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import msgspec
import pytest

from shared.errors import BadRequest, RemoteError, RpcTimeout, ServerNotFound
from shared.logging import bind_request_id, current_request_id
from shared.rpc import RpcClient, RpcServer, connect


class Echo(msgspec.Struct, tag="echo", frozen=True):
    text: str


class Fail(msgspec.Struct, tag="fail", frozen=True):
    kind: str


class Wait(msgspec.Struct, tag="wait", frozen=True):
    token: str


Msg = Echo | Fail | Wait


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


async def _handler(msg):
    if isinstance(msg, Echo):
        return Answer(text=msg.text.upper(), request_id=current_request_id())
    if isinstance(msg, Fail):
        if msg.kind == "known":
            raise ServerNotFound("abc")
        raise ZeroDivisionError("boom")
    raise AssertionError(msg)


async def test_call_returns_the_typed_result_and_carries_the_request_id(conn, client):
    queue = _queue()
    server = RpcServer(conn, queue, Msg, _handler)
    await server.start()
    try:
        bind_request_id("req-rpc-test")
        answer = await client.call(queue, Echo("hi"), Answer)
        assert answer == Answer(text="HI", request_id="req-rpc-test")
    finally:
        bind_request_id(None)
        await server.stop()


async def test_known_errors_come_back_as_themselves_others_as_remote_error(conn, client):
    queue = _queue()
    server = RpcServer(conn, queue, Msg, _handler)
    await server.start()
    try:
        with pytest.raises(ServerNotFound, match="Instance abc could not be found"):
            await client.call(queue, Fail("known"), Answer)
        with pytest.raises(RemoteError, match="ZeroDivisionError: boom"):
            await client.call(queue, Fail("unknown"), Answer)
        # The server survives both and keeps answering.
        assert (await client.call(queue, Echo("ok"), Answer)).text == "OK"
    finally:
        await server.stop()


async def test_call_without_a_consumer_times_out_clearly(client):
    with pytest.raises(RpcTimeout, match=r"No reply from .* to Echo within 0.5 s"):
        await client.call(_queue(), Echo("anyone?"), Answer, timeout=0.5)


async def test_cast_waits_in_a_durable_queue_until_a_worker_comes(conn, client):
    queue = _queue()
    got: asyncio.Queue = asyncio.Queue()

    async def handler(msg):
        await got.put(msg)

    await client.cast(queue, Echo("later"))
    await client.cast(queue, Echo("later too"))
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

    async def hangs(msg):
        started.set()
        await asyncio.sleep(3600)

    dying = await connect(amqp_url)
    first = RpcServer(dying, queue, Msg, hangs)
    await first.start()
    await client.cast(queue, Wait("work"))
    await asyncio.wait_for(started.wait(), 5)
    await dying.close()  # the worker dies before it acked

    got: asyncio.Queue = asyncio.Queue()

    async def handler(msg):
        await got.put(msg)

    survivor = await connect(amqp_url)
    second = RpcServer(survivor, queue, Msg, handler)
    await second.start()
    try:
        assert await asyncio.wait_for(got.get(), 10) == Wait("work")
    finally:
        await second.stop()
        await survivor.close()


async def test_an_undecodable_message_is_dropped_and_the_server_goes_on(conn, client):
    queue = _queue()
    server = RpcServer(conn, queue, Msg, _handler)
    await server.start()
    try:
        channel = await conn.channel()
        await channel.default_exchange.publish(aio_pika.Message(b'{"type": "nope"}'),
                                               routing_key=queue)
        await channel.close()
        assert (await client.call(queue, Echo("still here"), Answer)).text == "STILL HERE"
    finally:
        await server.stop()


async def test_bad_request_from_a_handler_keeps_its_message(conn, client):
    queue = _queue()

    async def refuses(msg):
        raise BadRequest("Network 42 could not be found.")

    server = RpcServer(conn, queue, Msg, refuses)
    await server.start()
    try:
        with pytest.raises(BadRequest) as err:
            await client.call(queue, Echo("x"), Answer)
        assert err.value.message == "Network 42 could not be found."
        assert err.value.http_status == 400
    finally:
        await server.stop()
