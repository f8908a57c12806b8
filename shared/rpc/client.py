"""The sending side: ``cast`` (fire and forget, confirmed) and ``call`` (reply).

Every publish waits for the broker's confirm, at most ``publish_timeout_s``: a
broker that is gone, restarting or blocking publishers (memory or disk alarm)
makes ``cast`` and ``call`` raise :class:`BrokerUnavailable` (a transient
``ServiceUnavailable``) instead of hanging, so the API answers 503 and a worker
retries. The request id travels in a header; callers name it explicitly.
"""

from __future__ import annotations

import asyncio
import time
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

from shared.errors import BrokerUnavailable, RpcTimeout
from shared.metrics import RPC_SENT, RPC_SENT_DURATION, message_type, message_type_of
from shared.rpc.envelope import REQUEST_ID_HEADER, encoder, raise_fault, reply_decoder

T = TypeVar("T")
log = structlog.get_logger(__name__)


class RpcClient:
    """Publishes messages to named durable queues and waits for replies to calls."""

    def __init__(self, connection: AbstractConnection, *, timeout: float = 30.0,
                 publish_timeout: float = 5.0) -> None:
        self._connection = connection
        self._timeout = timeout
        self._publish_timeout = publish_timeout
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

    async def _publish(self, queue: str, body: bytes, request_id: str | None,
                       **extra: Any) -> None:
        """Publish to ``queue`` and wait for the confirm; BrokerUnavailable if it fails."""
        headers = {REQUEST_ID_HEADER: request_id} if request_id else {}
        message = aio_pika.Message(body, content_type="application/json", headers=headers,
                                   **extra)
        try:
            await asyncio.wait_for(self._publish_once(queue, message), self._publish_timeout)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            # A message the broker returned (no such queue: it lost its data) is
            # declared again on the next try.
            self._declared.discard(queue)
            log.warning("rpc.publish_failed", queue=queue, error=type(exc).__name__)
            raise BrokerUnavailable() from exc

    async def _publish_once(self, queue: str, message: aio_pika.Message) -> None:
        await self._ensure_queue(queue)
        assert self._channel is not None
        await self._channel.default_exchange.publish(message, routing_key=queue, mandatory=True)

    async def cast(self, queue: str, msg: msgspec.Struct, *, request_id: str | None) -> None:
        """Put ``msg`` on ``queue``, persistently; return once the broker confirmed it."""
        await self._cast(queue, encoder.encode(msg), message_type(msg), request_id)
        log.debug("rpc.cast", queue=queue, msg=type(msg).__name__)

    async def cast_raw(self, queue: str, body: bytes, *, request_id: str | None) -> None:
        """``cast`` of a message already encoded (the outbox keeps them so)."""
        await self._cast(queue, body, message_type_of(body), request_id)

    async def _cast(self, queue: str, body: bytes, kind: str, request_id: str | None) -> None:
        started = time.perf_counter()
        try:
            await self._publish(queue, body, request_id,
                                delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        except BrokerUnavailable:
            RPC_SENT.labels("cast", kind, "unavailable").inc()
            raise
        RPC_SENT.labels("cast", kind, "ok").inc()
        RPC_SENT_DURATION.labels("cast", kind).observe(time.perf_counter() - started)

    async def call(self, queue: str, msg: msgspec.Struct, result_type: type[T],
                   *, request_id: str | None, timeout: float | None = None) -> T:
        """Send ``msg`` and wait for the reply, decoded as ``result_type``.

        Raises the remote error's class when it is known here, ``RemoteError``
        otherwise, and ``RpcTimeout`` when no reply comes within ``timeout``.
        Counted in ``nimbus_rpc_sent_total`` by outcome (``error``: the reply was a fault).
        """
        started, kind, outcome = time.perf_counter(), message_type(msg), "error"
        try:
            result = await self._call(queue, msg, result_type, request_id, timeout)
            outcome = "ok"
            return result
        except RpcTimeout:
            outcome = "timeout"
            raise
        except BrokerUnavailable:
            outcome = "unavailable"
            raise
        finally:
            RPC_SENT.labels("call", kind, outcome).inc()
            RPC_SENT_DURATION.labels("call", kind).observe(time.perf_counter() - started)

    async def _call(self, queue: str, msg: msgspec.Struct, result_type: type[T],
                    request_id: str | None, timeout: float | None) -> T:
        assert self._reply_queue is not None, "RpcClient.start() was not awaited"
        timeout = self._timeout if timeout is None else timeout
        corr = uuid.uuid4().hex
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[corr] = fut
        try:
            # The message expires with the caller's patience, so a worker that comes
            # back late does not act on a request nobody waits for any more.
            await self._publish(queue, encoder.encode(msg), request_id, correlation_id=corr,
                                reply_to=self._reply_queue.name, expiration=timeout)
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
