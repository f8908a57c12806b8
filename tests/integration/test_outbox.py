"""The outbox and its relay against a real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from shared import outbox
from shared.config import DatabaseSettings
from shared.db.pool import create_pool
from shared.outbox import Relay
from shared.rpc import RpcClient, connect


class Note(msgspec.Struct, tag="note", frozen=True):
    text: str


@pytest.fixture
async def pool(db_url):
    p = await create_pool(DatabaseSettings(url=db_url, pool_min=1, pool_max=4))
    yield p
    await p.close()



async def _received(amqp_url: str, queue: str, n: int, timeout: float = 10.0) -> list:
    """The first ``n`` messages on ``queue`` (with their request id), waiting for them."""
    connection = await connect(amqp_url)
    try:
        channel = await connection.channel()
        q = await channel.declare_queue(queue, durable=True)
        got: list = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(got) < n:
            m = await q.get(no_ack=True, fail=False)
            if m is None:
                assert asyncio.get_running_loop().time() < deadline, f"only {got} in {timeout} s"
                await asyncio.sleep(0.05)
                continue
            got.append((msgspec.json.decode(m.body, type=Note), m.headers.get("x-compute-request-id")))
        return got
    finally:
        await connection.close()


async def _rows(pool) -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM outbox")


async def test_a_committed_row_is_published_and_deleted(pool, rpc, amqp_url):
    relay = Relay(pool, rpc, interval_s=0.05)
    relay.start()
    try:
        async with pool.acquire() as conn, conn.transaction():
            item = await outbox.put(conn, "test.outbox", Note("hello"), request_id="req-1",
                                    lease_s=relay.lease_s)
        relay.send(item)
        assert await _received(amqp_url, "test.outbox", 1) == [(Note("hello"), "req-1")]
        deadline = asyncio.get_running_loop().time() + 10
        while await _rows(pool):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
    finally:
        await relay.stop()


async def test_a_rolled_back_row_is_never_sent(pool, rpc, amqp_url):
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await outbox.put(conn, "test.rollback", Note("never"), request_id=None, lease_s=5)
            raise RuntimeError("the request failed after writing")
    assert await _rows(pool) == 0


async def test_rows_whose_relay_died_are_published_by_another_once_their_lease_lapses(
        pool, rpc, amqp_url):
    # A relay whose broker connection is gone: its publish fails, the row stays.
    dead_connection = await connect(amqp_url)
    dead_rpc = RpcClient(dead_connection, timeout=1, publish_timeout=1)
    await dead_rpc.start()
    await dead_connection.close()
    dying = Relay(pool, dead_rpc, lease_s=0.5, interval_s=0.05)
    async with pool.acquire() as conn, conn.transaction():
        items = [await outbox.put(conn, "test.lapsed", Note(f"n{i}"), request_id=f"req-{i}",
                                  lease_s=dying.lease_s) for i in range(3)]
    dying.send(*items)
    assert await dying.flush() == 0  # nothing could be published
    assert dying.backlog == 3 and await _rows(pool) == 3

    # The process dies (its relay with it); another relay claims the rows once
    # their lease has lapsed and delivers them.
    survivor = Relay(pool, rpc, lease_s=5, interval_s=0.05)
    survivor.start()
    try:
        got = await _received(amqp_url, "test.lapsed", 3)
        assert sorted(got, key=lambda g: g[1]) == [(Note(f"n{i}"), f"req-{i}") for i in range(3)]
    finally:
        await survivor.stop()
    assert await _rows(pool) == 0
