"""The one retry policy: which failures are worth retrying, and how long to keep at it.

A failure is *transient* when the same work may well succeed a moment later
without anyone changing anything: the database or the broker is unreachable or
restarting, a pool or a publish timed out, a serialisation conflict. Everything
else (a bug, bad data, a business refusal such as "no valid host") is
*permanent*: retrying only repeats it, so it fails fast, once.

Every service uses :func:`is_transient` to tell them apart and
:class:`RetryPolicy` for the pace: the RPC server retries a handler that failed
transiently (``shared.rpc.server``), the API turns a transient failure into
``503 serviceUnavailable`` with ``Retry-After`` (``services.api.representation``),
and the outbox relay republishes (``shared.outbox``).
"""

from __future__ import annotations

import asyncio
import errno
import random
import socket
import time
from collections.abc import Iterator

import asyncpg
import msgspec
from aiormq import exceptions as amqp

from shared.errors import BrokerUnavailable, ComputeError, DatabaseUnavailable, ServiceUnavailable

# SQLSTATE classes that say "try again": 08 connection exception, 40 transaction
# rollback (serialisation failure, deadlock), 53 insufficient resources (too
# many connections), 57 operator intervention (shutdown, cannot connect now,
# statement cancelled by timeout), 58 system error (I/O).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")

_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,              # refused, reset, aborted (AMQPConnectionError too)
    TimeoutError,                 # pool acquire, command_timeout, publish timeout
    socket.gaierror,              # a name that did not resolve (DNS is away)
    amqp.AMQPConnectionError,
    amqp.ChannelInvalidStateError,  # a channel closed under us by a broker restart
    amqp.ChannelClosed,
    amqp.ConnectionClosed,
    amqp.DeliveryError,           # nack or return: the broker could not take it now
)

# Other OSErrors count only when they are about reaching a peer: a full disk, a
# permission or a missing file is no better a moment later.
_TRANSIENT_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN,
                     errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT, errno.EPIPE}


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` may go away by itself, so the work is worth trying again."""
    if isinstance(exc, ComputeError):
        return exc.retryable
    if getattr(type(exc), "retryable", None) is True:
        return True  # an error that says so itself (a hypervisor connection that dropped)
    return is_outage(exc)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database or the broker (or the way to them) is away
    or stuck: what the ``OutageClock`` records. A service that is merely slow to
    answer a call, or a host that has not reported yet, is transient but not this."""
    if isinstance(exc, (DatabaseUnavailable, BrokerUnavailable)):
        return True
    if isinstance(exc, ComputeError):
        return False
    if isinstance(exc, asyncpg.PostgresError):
        return (exc.sqlstate or "")[:2] in _TRANSIENT_SQLSTATE_CLASSES
    if isinstance(exc, asyncpg.InterfaceError):
        # asyncpg says "connection is closed" / "pool is closing" for a connection
        # lost under it; its other interface errors are misuse, i.e. bugs.
        return "closed" in str(exc) or "closing" in str(exc)
    if isinstance(exc, asyncpg.InternalClientError):
        # "cannot switch to state 12; another operation is in progress": seen (the
        # volume fault test) on a pooled connection the server dropped while
        # shutting down in the middle of its previous use. The pool throws the
        # connection away; the request is worth a 503, not a 500.
        return "another operation" in str(exc)
    if isinstance(exc, _TRANSIENT_TYPES):
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Exponential backoff with jitter, bounded by a deadline."""

    first_delay_s: float = 0.5
    """Wait before the second try."""
    max_delay_s: float = 10.0
    """Longest wait between two tries."""
    deadline_s: float = 300.0
    """Give up this long after the first failure."""

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The waits between tries, each within 50-100 % of its nominal value
        (jitter, so that workers that failed together do not retry together).
        Infinite: the caller checks the deadline."""
        rng = rng or random.Random()
        delay = self.first_delay_s
        while True:
            yield delay * (0.5 + rng.random() / 2)
            delay = min(delay * 2, self.max_delay_s)


def describe(exc: BaseException) -> str:
    """A short, operator-facing name for what failed (no connection strings, no SQL)."""
    if isinstance(exc, (asyncpg.PostgresError, asyncpg.InterfaceError)):
        return f"database unavailable ({type(exc).__name__})"
    if isinstance(exc, (amqp.AMQPError, amqp.ChannelInvalidStateError)):
        return f"message broker unavailable ({type(exc).__name__})"
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return f"connection failed ({type(exc).__name__})"
    if isinstance(exc, ComputeError):
        return exc.message
    return type(exc).__name__


class OutageClock:
    """When this process last saw the database or broker fail it.

    Its start counts as one: a process that has just (re)started, or has just
    regained its database, has a stale view of who heartbeated meanwhile, so
    decisions that take work from a silent host wait until it has been
    healthy for a full down time (``shared.db.hosts``).
    """

    def __init__(self) -> None:
        self._last = time.monotonic()

    def note(self) -> None:
        """Record a transient failure, now."""
        self._last = time.monotonic()

    def healthy_for(self) -> float:
        """Seconds since the last transient failure (or the start)."""
        return time.monotonic() - self._last


def unavailable(exc: BaseException) -> ServiceUnavailable:
    """The 503 fault for a transient failure, naming what was away, not how."""
    if isinstance(exc, ServiceUnavailable):
        return exc
    if isinstance(exc, (asyncpg.PostgresError, asyncpg.InterfaceError)):
        return DatabaseUnavailable()
    if isinstance(exc, (amqp.AMQPError, amqp.ChannelInvalidStateError)):
        return BrokerUnavailable()
    return ServiceUnavailable()
