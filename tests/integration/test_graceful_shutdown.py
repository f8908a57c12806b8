"""A worker stopping (SIGTERM) lets what is in flight finish within ``[shutdown]
grace_s`` and hands back what did not, against real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import msgspec

from shared.config import (
    AmqpSettings,
    DatabaseSettings,
    HealthSettings,
    ShutdownSettings,
)
from shared.rpc import RpcClient
from shared.rpc import connect as rpc_connect
from shared.rpc.server import CallContext
from shared.worker import Worker


class Job(msgspec.Struct, tag="shutdown_job", frozen=True):
    n: int


async def _started_worker(db_url: str, amqp_url: str, queue: str, grace_s: float,
                          handler) -> tuple[Worker, asyncio.Task[None]]:
    worker = Worker("test", database=DatabaseSettings(url=db_url),
                    amqp=AmqpSettings(url=amqp_url), health=HealthSettings(),
                    shutdown=ShutdownSettings(grace_s=grace_s))
    await worker.open()
    worker.serve(queue, Job, handler)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.started.wait(), 30)
    return worker, task


async def _cast(amqp_url: str, queue: str, job: Job) -> None:
    connection = await rpc_connect(amqp_url)
    client = RpcClient(connection)
    await client.start()
    await client.cast(queue, job, request_id=None)
    await client.close()
    await connection.close()


async def _ready(amqp_url: str, queue: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, durable=True, passive=True)
        return declared.declaration_result.message_count or 0
    finally:
        await connection.close()


async def test_a_handler_in_flight_finishes_within_the_grace_and_its_message_is_acked(
        db_url, amqp_url):
    queue = f"test.{uuid.uuid4().hex[:8]}"
    started, release = asyncio.Event(), asyncio.Event()
    done: list[int] = []

    async def handler(job: Job, ctx: CallContext) -> None:
        started.set()
        await release.wait()
        done.append(job.n)

    worker, task = await _started_worker(db_url, amqp_url, queue, 30, handler)
    await _cast(amqp_url, queue, Job(1))
    await asyncio.wait_for(started.wait(), 10)
    worker.stop()
    release.set()  # the work ends while the worker is stopping
    await asyncio.wait_for(task, 30)
    assert done == [1]
    assert await _ready(amqp_url, queue) == 0


async def test_a_handler_past_the_grace_is_cut_off_and_its_message_handed_back(
        db_url, amqp_url):
    queue = f"test.{uuid.uuid4().hex[:8]}"
    started, never = asyncio.Event(), asyncio.Event()

    async def handler(job: Job, ctx: CallContext) -> None:
        started.set()
        await never.wait()

    worker, task = await _started_worker(db_url, amqp_url, queue, 0.1, handler)
    await _cast(amqp_url, queue, Job(2))
    await asyncio.wait_for(started.wait(), 10)
    worker.stop()
    await asyncio.wait_for(task, 30)
    # The next consumer gets it, marked as delivered before.
    connection = await aio_pika.connect(amqp_url)
    try:
        got: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
        channel = await connection.channel()
        q = await channel.declare_queue(queue, durable=True)

        async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await got.put(message)

        await q.consume(take, no_ack=True)
        message = await asyncio.wait_for(got.get(), 10)
        assert msgspec.json.decode(message.body, type=Job) == Job(2)
        assert message.redelivered
    finally:
        await connection.close()
