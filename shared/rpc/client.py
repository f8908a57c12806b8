"""The sending side: ``cast`` (fire and forget, confirmed) and ``call`` (reply)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, TypeVar

import aio_pika
import msgspec
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)

from shared.errors import RpcTimeout
from shared.logging import current_request_id
from shared.rpc.envelope import REQUEST_ID_HEADER, encoder, raise_fault, reply_decoder

T = TypeVar("T")
log = structlog.get_logger(__name__)


class RpcClient:
    """Publishes messages to named durable queues and waits for replies to calls."""

    def __init__(self, connection: AbstractConnection, *, timeout: float = 30.0) -> None:
        self._connection = connection
        self._timeout = timeout
        self._channel: AbstractChannel | None = None
        self._reply_queue: AbstractQueue | None = None
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._declared: set[str] = set()
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        # Publisher confirms plus on_return_raises: publish returns only once the
        # broker has the message, and raises if no queue could take it.
        self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._reply_queue = await self._channel.declare_queue(exclusive=True, auto_delete=True)
        await self._reply_queue.consume(self._on_reply, no_ack=True)

    async def close(self) -> None:
        for fut in self._pending.values():
            fut.cancel()
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _ensure_queue(self, queue: str) -> None:
        if queue in self._declared:
            return
        async with self._lock:
            if queue not in self._declared:
                assert self._channel is not None, "RpcClient.start() was not awaited"
                await self._channel.declare_queue(queue, durable=True)
                self._declared.add(queue)

    def _message(self, msg: msgspec.Struct, **extra: Any) -> aio_pika.Message:
        headers = {}
        if (rid := current_request_id()) is not None:
            headers[REQUEST_ID_HEADER] = rid
        return aio_pika.Message(encoder.encode(msg), content_type="application/json",
                                headers=headers, **extra)

    async def cast(self, queue: str, msg: msgspec.Struct) -> None:
        """Put ``msg`` on ``queue``, persistently; return once the broker confirmed it."""
        await self._ensure_queue(queue)
        assert self._channel is not None
        await self._channel.default_exchange.publish(
            self._message(msg, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue, mandatory=True)
        log.debug("rpc.cast", queue=queue, msg=type(msg).__name__)

    async def call(self, queue: str, msg: msgspec.Struct, result_type: type[T],
                   *, timeout: float | None = None) -> T:
        """Send ``msg`` and wait for the reply, decoded as ``result_type``.

        Raises the remote error's class when it is known here, ``RemoteError``
        otherwise, and ``RpcTimeout`` when no reply comes within ``timeout``.
        """
        await self._ensure_queue(queue)
        assert self._channel is not None and self._reply_queue is not None
        timeout = self._timeout if timeout is None else timeout
        corr = uuid.uuid4().hex
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[corr] = fut
        try:
            # The message expires with the caller's patience, so a worker that comes
            # back late does not act on a request nobody waits for any more.
            await self._channel.default_exchange.publish(
                self._message(msg, correlation_id=corr, reply_to=self._reply_queue.name,
                              expiration=timeout),
                routing_key=queue, mandatory=True)
            try:
                body = await asyncio.wait_for(fut, timeout)
            except asyncio.TimeoutError:
                raise RpcTimeout(f"No reply from {queue} to {type(msg).__name__} "
                                 f"within {timeout:g} s.") from None
        finally:
            self._pending.pop(corr, None)
        reply = reply_decoder.decode(body)
        if reply.error is not None:
            raise_fault(reply.error)
        if result_type is type(None):
            return None  # type: ignore[return-value]
        return msgspec.json.decode(reply.result, type=result_type)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        fut = self._pending.get(message.correlation_id or "")
        if fut is not None and not fut.done():
            fut.set_result(message.body)
