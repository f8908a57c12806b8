"""The test infrastructure itself: real PostgreSQL and RabbitMQ, isolated per test."""

import asyncio
import uuid

import aio_pika
import asyncpg
import pytest

from tests.infra_fixtures import Infra


async def test_postgres_answers(infra: Infra) -> None:
    conn = await asyncpg.connect(infra.pg_admin_url)
    try:
        assert await conn.fetchval("SELECT 40 + 2") == 42
        assert (await conn.fetchval("SHOW server_version_num")) >= "150000"
    finally:
        await conn.close()


async def test_db_url_is_migrated_and_writable(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("CREATE TABLE probe (id int PRIMARY KEY)")
        await conn.execute("INSERT INTO probe VALUES (1)")
        assert await conn.fetchval("SELECT count(*) FROM probe") == 1
    finally:
        await conn.close()


@pytest.fixture
async def other_db_url(infra: Infra, migrated_template: str):
    name = "t_other_" + uuid.uuid4().hex[:8]
    url = await infra.create_database(name, template=migrated_template)
    yield url
    await infra.drop_database(name)


async def test_each_test_gets_its_own_database(db_url: str, other_db_url: str) -> None:
    assert db_url != other_db_url
    a, b = await asyncpg.connect(db_url), await asyncpg.connect(other_db_url)
    try:
        assert await a.fetchval("SELECT current_database()") != await b.fetchval("SELECT current_database()")
        await a.execute("CREATE TABLE only_in_a (id int)")
        assert await b.fetchval("SELECT to_regclass('only_in_a')") is None
    finally:
        await a.close()
        await b.close()


async def test_rabbitmq_round_trip_on_fresh_vhost(amqp_url: str) -> None:
    assert amqp_url.rsplit("/", 1)[1].startswith("t-")
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue("probe", durable=True)
        await channel.default_exchange.publish(
            aio_pika.Message(b"ping", delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key="probe")
        message = await queue.get(timeout=5, fail=False)
        for _ in range(50):
            if message:
                break
            await asyncio.sleep(0.1)
            message = await queue.get(timeout=5, fail=False)
        assert message is not None and message.body == b"ping"
        await message.ack()


async def test_vhosts_are_isolated(infra: Infra, amqp_url: str) -> None:
    other = await infra.new_vhost()
    try:
        assert other != amqp_url
        a, b = await aio_pika.connect(amqp_url), await aio_pika.connect(other)
        async with a, b:
            ca, cb = await a.channel(), await b.channel()
            await ca.declare_queue("shared-name")
            await ca.default_exchange.publish(aio_pika.Message(b"for a"), routing_key="shared-name")
            qb = await cb.declare_queue("shared-name")
            await asyncio.sleep(0.2)
            assert await qb.get(fail=False) is None
    finally:
        await infra.drop_vhost(other)
