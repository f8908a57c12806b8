"""The receiving side: consume one queue, decode into the service's messages, dispatch,
and the delivery rules every service shares.

Delivery is at least once: a message is acked only after its handler is done
with it, so a worker that dies (or loses the broker) mid-way leaves it for the
next consumer, and every handler must be idempotent. What happens when a
handler raises depends on what it raised (``shared.retry.is_transient``):

* **transient** (the database or the broker unreachable, a timeout): a cast is
  handled again after a backoff, and again, until it succeeds or
  ``retry_deadline_s`` has passed since its first failure. Then the service's
  ``give_up`` hook ends the work in ERROR with a fault saying why (if the
  database lets it), and the message goes to ``<queue>.dead-letter``, where an
  operator can read it (``python -m services.api.manage dead-letters``) and,
  where the give-up could not be recorded (the database still away), send it
  back once the cause is fixed; the scheduler's timeouts are the backstop.
  A call is not retried here: its caller is waiting, and gets a
  ``ServiceUnavailable`` fault at once to retry or answer 503 with;
* **permanent** (anything else that escaped the handler: a bug, bad data): no
  retry. A call's caller gets the fault; a cast goes to the dead-letter queue,
  with the error, for an operator to look at. Most permanent failures never get
  here: handlers record them as the server's fault themselves (the agent's
  runner, the scheduler's "no valid host") and return; what reaches this layer
  is a failure to record them;
* **undecodable**: dead-lettered at once; no retry can make it valid.

A worker that stops (SIGTERM) stops consuming, lets handlers in flight finish
for a while, and leaves messages still being retried unacked: the broker hands
them to the next consumer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aio_pika
import msgspec
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from shared.errors import ComputeError
from shared.logging import bind_request_id
from shared.metrics import (
    RPC_DEAD_LETTERED,
    RPC_HANDLED,
    RPC_HANDLED_DURATION,
    RPC_RETRIES,
    message_type,
    queue_kind,
)
from shared.retry import RetryPolicy, describe, is_outage, is_transient
from shared.rpc.envelope import REQUEST_ID_HEADER, Reply, encoder, fault_from

log = structlog.get_logger(__name__)

DEAD_LETTER_SUFFIX = ".dead-letter"


def dead_letter_queue(queue: str) -> str:
    return queue + DEAD_LETTER_SUFFIX


class CallContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a handler learns of a message beside its body."""

    request_id: str | None = None
    """The API request this work belongs to (``X-Compute-Request-Id``), which
    names its instance action; None for work no request started."""
    redelivered: bool = False
    """The broker delivered this message before (a consumer died with it)."""


Handler = Callable[[Any, CallContext], Awaitable[Any]]
GiveUp = Callable[[Any, CallContext, BaseException], Awaitable[None]]


class RpcServer:
    """Serves one durable queue with ``handler(msg, ctx)``.

    ``messages`` is the (tagged union) type the queue's bodies decode into;
    ``give_up(msg, ctx, exc)`` records the failure of a cast whose retries ran
    out (see the module docstring).
    """

    def __init__(self, connection: AbstractConnection, queue: str, messages: Any,
                 handler: Handler, *, prefetch: int = 16, policy: RetryPolicy | None = None,
                 give_up: GiveUp | None = None,
                 on_transient: Callable[[], None] | None = None,
                 publish_timeout_s: float = 5.0) -> None:
        """``on_transient`` is told of each failure that says the database or broker
        is away (``shared.retry.is_outage``)."""
        self._connection = connection
        self.queue = queue
        self._decoder = msgspec.json.Decoder(messages)
        self._handler = handler
        self.prefetch = prefetch
        self._policy = policy or RetryPolicy()
        self._give_up = give_up
        self._on_transient = on_transient
        self._publish_timeout_s = publish_timeout_s
        self._channel: AbstractChannel | None = None
        self._owns_channel = True
        self._tasks: set[asyncio.Task[None]] = set()
        self._consumer_tag: str | None = None
        self._queue_obj: Any = None
        self._stopping = asyncio.Event()
        self._dead_declared = False
        self.retrying = 0
        """Messages waiting for their next try right now (health and tests)."""

    async def start(self, channel: AbstractChannel | None = None) -> None:
        """Declare the queue and consume it, on a channel of its own, or on ``channel``
        shared with other servers (whoever opened it set its per-consumer prefetch,
        and closes it after every server on it stopped)."""
        if channel is None:
            channel = await self._connection.channel()
            await channel.set_qos(prefetch_count=self.prefetch)
        else:
            self._owns_channel = False
        self._channel = channel
        self._queue_obj = await self._channel.declare_queue(self.queue, durable=True)
        self._consumer_tag = await self._queue_obj.consume(self._on_message)
        log.info("rpc.serving", queue=self.queue)

    async def stop(self, grace_s: float = 10.0) -> None:
        self._stopping.set()
        if self._queue_obj is not None and self._consumer_tag is not None:
            try:
                await self._queue_obj.cancel(self._consumer_tag)
            except Exception:  # the channel may already be gone
                pass
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace_s)
        for task in list(self._tasks):
            task.cancel()
        if self._owns_channel and self._channel is not None and not self._channel.is_closed:
            try:
                await self._channel.close()
            except Exception:  # closing a channel of a dead connection
                pass

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # Handle each message in its own task so a slow build does not hold up
        # the queue; prefetch bounds how many run at once.
        task = asyncio.create_task(self._handle(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        rid = (message.headers or {}).get(REQUEST_ID_HEADER)
        rid = rid if isinstance(rid, str) else None
        bind_request_id(rid)
        try:
            msg = self._decoder.decode(message.body)
        except msgspec.DecodeError as exc:
            log.error("rpc.undecodable", queue=self.queue, error=str(exc))
            await self._dead_letter(message, "undecodable", f"undecodable: {exc}")
            return
        ctx = CallContext(request_id=rid, redelivered=bool(message.redelivered))
        kind, started = ("call" if message.reply_to else "cast"), time.perf_counter()
        if message.reply_to:
            outcome = await self._call(message, msg, ctx)
        else:
            outcome = await self._cast(message, msg, ctx)
        RPC_HANDLED.labels(kind, message_type(msg), outcome).inc()
        RPC_HANDLED_DURATION.labels(kind, message_type(msg)).observe(time.perf_counter() - started)

    async def _call(self, message: AbstractIncomingMessage, msg: Any, ctx: CallContext) -> str:
        """Handle a call and reply; its outcome (``ok``, ``error``) for the metrics."""
        reply: Reply
        outcome = "ok"
        try:
            result = await self._handler(msg, ctx)
            reply = Reply(result=msgspec.Raw(encoder.encode(result)))
        except Exception as exc:  # the caller decides what to do with it
            outcome = "error"
            if is_outage(exc) and self._on_transient is not None:
                self._on_transient()
            _log_failure(self.queue, msg, exc)
            reply = Reply(error=fault_from(exc))
        try:
            assert self._channel is not None
            await asyncio.wait_for(self._channel.default_exchange.publish(
                aio_pika.Message(encoder.encode(reply), correlation_id=message.correlation_id,
                                 content_type="application/json"),
                routing_key=message.reply_to or ""), self._publish_timeout_s)
        except Exception as exc:  # the caller went away (or the broker blocks); it times out
            log.warning("rpc.reply_failed", error=str(exc))
        await _settle(message.ack())
        return outcome

    async def _cast(self, message: AbstractIncomingMessage, msg: Any, ctx: CallContext) -> str:
        """Handle a cast under the delivery rules; its outcome for the metrics: ``ok``,
        ``permanent`` or ``gave_up`` (dead-lettered), ``handed_back`` (stopping)."""
        delays = self._policy.delays()
        first_failure: float | None = None
        while True:
            try:
                await self._handler(msg, ctx)
                break
            except Exception as exc:
                if not is_transient(exc):
                    _log_failure(self.queue, msg, exc)
                    await self._dead_letter(message, "permanent",
                                            f"permanent error: {_name(exc)}")
                    return "permanent"
                if self._on_transient is not None and is_outage(exc):
                    self._on_transient()
                now = time.monotonic()
                first_failure = first_failure or now
                if now - first_failure >= self._policy.deadline_s:
                    await self._abandon(message, msg, ctx, exc)
                    return "gave_up"
                delay = next(delays)
                log.warning("rpc.retrying", queue=self.queue, msg=type(msg).__name__,
                            error=describe(exc), retry_in_s=round(delay, 2),
                            failing_for_s=round(now - first_failure, 1))
                self.retrying += 1
                RPC_RETRIES.labels(message_type(msg)).inc()
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                finally:
                    self.retrying -= 1
                if self._stopping.is_set():
                    # Left unacked: the broker gives it to the next consumer.
                    log.info("rpc.retry_left_to_next_consumer", queue=self.queue,
                             msg=type(msg).__name__)
                    return "handed_back"
        await _settle(message.ack())
        return "ok"

    async def _abandon(self, message: AbstractIncomingMessage, msg: Any, ctx: CallContext,
                       exc: BaseException) -> None:
        """The retries ran out: record the failure where the service can, then dead-letter."""
        reason = (f"gave up after {self._policy.deadline_s:g} s of transient failures: "
                  f"{describe(exc)}")
        log.error("rpc.gave_up", queue=self.queue, msg=type(msg).__name__, reason=reason)
        if self._give_up is not None:
            try:
                await self._give_up(msg, ctx, exc)
            except Exception as again:  # still down: the sweeps are the last resort
                log.error("rpc.give_up_failed", queue=self.queue, error=describe(again))
        await self._dead_letter(message, "gave_up", reason)

    async def _dead_letter(self, message: AbstractIncomingMessage, why: str,
                           reason: str) -> None:
        """Move ``message`` to ``<queue>.dead-letter`` with why (``why``: undecodable,
        permanent or gave_up, the metrics' label; ``reason``: the words), then ack it.

        If the dead-letter queue cannot take it (the broker is gone), the
        message is left unacked for redelivery: it is never dropped.
        """
        target = dead_letter_queue(self.queue)
        headers = dict(message.headers or {})
        headers.update({"x-nimbus-dead-reason": reason[:1000], "x-nimbus-dead-queue": self.queue,
                        "x-nimbus-dead-at": datetime.now(UTC).isoformat()})
        letter = aio_pika.Message(message.body, content_type=message.content_type,
                                  headers=headers, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        try:
            await asyncio.wait_for(self._publish_dead(target, letter), self._publish_timeout_s)
        except Exception as exc:
            log.error("rpc.dead_letter_failed", queue=self.queue, error=describe(exc))
            return
        log.warning("rpc.dead_lettered", queue=self.queue, dead_letter_queue=target,
                    reason=reason)
        RPC_DEAD_LETTERED.labels(queue_kind(self.queue), why).inc()
        await _settle(message.ack())

    async def _publish_dead(self, target: str, letter: aio_pika.Message) -> None:
        assert self._channel is not None
        if not self._dead_declared:
            await self._channel.declare_queue(target, durable=True)
            self._dead_declared = True
        await self._channel.default_exchange.publish(letter, routing_key=target)


async def _settle(ack: Awaitable[Any]) -> None:
    """Ack, tolerating a channel that died meanwhile (the broker then redelivers)."""
    try:
        await ack
    except Exception as exc:
        log.info("rpc.ack_failed", error=describe(exc))


def _name(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ComputeError) else type(exc).__name__


def _log_failure(queue: str, msg: Any, exc: BaseException) -> None:
    expected = isinstance(exc, ComputeError) or is_transient(exc)
    log.warning("rpc.handler_failed", queue=queue, msg=type(msg).__name__,
                error=f"{type(exc).__name__}: {exc}", exc_info=not expected)
