"""The receiving side: consume one queue, decode into the service's messages, dispatch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import msgspec
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from shared.logging import bind_request_id
from shared.rpc.envelope import REQUEST_ID_HEADER, Reply, encoder, fault_from

log = structlog.get_logger(__name__)

Handler = Callable[[Any], Awaitable[Any]]


class RpcServer:
    """Serves one durable queue with ``handler(msg)``.

    ``messages`` is the (tagged union) type the queue's bodies decode into. A
    message is acked only after its handler finished, so a worker that dies
    mid-way leaves it for the next consumer; handlers must therefore be
    idempotent. A body that does not decode is logged and dropped: no retry can
    make it valid.
    """

    def __init__(self, connection: AbstractConnection, queue: str, messages: Any,
                 handler: Handler, *, prefetch: int = 16) -> None:
        self._connection = connection
        self.queue = queue
        self._decoder = msgspec.json.Decoder(messages)
        self._handler = handler
        self._prefetch = prefetch
        self._channel: AbstractChannel | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._consumer_tag: str | None = None
        self._queue_obj = None

    async def start(self) -> None:
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=self._prefetch)
        self._queue_obj = await self._channel.declare_queue(self.queue, durable=True)
        self._consumer_tag = await self._queue_obj.consume(self._on_message)
        log.info("rpc.serving", queue=self.queue)

    async def stop(self) -> None:
        if self._queue_obj is not None and self._consumer_tag is not None:
            try:
                await self._queue_obj.cancel(self._consumer_tag)
            except Exception:  # the channel may already be gone
                pass
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # Handle each message in its own task so a slow build does not hold up
        # the queue; prefetch bounds how many run at once.
        task = asyncio.create_task(self._handle(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        rid = (message.headers or {}).get(REQUEST_ID_HEADER)
        bind_request_id(rid if isinstance(rid, str) else None)
        try:
            msg = self._decoder.decode(message.body)
        except msgspec.DecodeError as exc:
            log.error("rpc.undecodable", queue=self.queue, error=str(exc))
            await message.reject(requeue=False)
            return
        reply: Reply
        try:
            result = await self._handler(msg)
            reply = Reply(result=msgspec.Raw(encoder.encode(result)))
        except Exception as exc:  # every error goes back to a caller, or to the log
            log.warning("rpc.handler_failed", queue=self.queue, msg=type(msg).__name__,
                        error=f"{type(exc).__name__}: {exc}", exc_info=not _is_expected(exc))
            reply = Reply(error=fault_from(exc))
        if message.reply_to:
            try:
                assert self._channel is not None
                await self._channel.default_exchange.publish(
                    aio_pika.Message(encoder.encode(reply), correlation_id=message.correlation_id,
                                     content_type="application/json"),
                    routing_key=message.reply_to)
            except Exception as exc:  # the caller went away; nothing to tell
                log.warning("rpc.reply_failed", error=str(exc))
        await message.ack()


def _is_expected(exc: Exception) -> bool:
    from shared.errors import ComputeError
    return isinstance(exc, ComputeError)
