"""Which failures are retried (transient), which are outages, and the backoff."""

from __future__ import annotations

import asyncio
import errno
import random
import socket

import asyncpg
import pytest
from aiormq import exceptions as amqp

from services.scheduler.build import HostsNotReady
from shared.errors import (
    BadRequest,
    BrokerUnavailable,
    DatabaseUnavailable,
    RemoteError,
    RpcTimeout,
    ServerNotFound,
)
from shared.retry import RetryPolicy, is_outage, is_transient, unavailable

OUTAGES = [
    ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
    ConnectionResetError(errno.ECONNRESET, "reset"),
    asyncio.TimeoutError(),
    socket.gaierror(-2, "Name or service not known"),
    OSError(errno.ENETUNREACH, "Network is unreachable"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.TooManyConnectionsError("too many"),
    asyncpg.SerializationError("could not serialize"),
    asyncpg.QueryCanceledError("statement timeout"),
    asyncpg.InterfaceError("cannot perform operation: connection is closed"),
    asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in "
                                "progress"),
    amqp.ChannelInvalidStateError("closed"),
    amqp.AMQPConnectionError("gone"),
    DatabaseUnavailable(),
    BrokerUnavailable(),
]

PERMANENT = [
    ZeroDivisionError("a bug"),
    KeyError("x"),
    PermissionError(errno.EACCES, "Permission denied"),  # no better a moment later
    OSError(errno.ENOSPC, "No space left on device"),
    FileNotFoundError(errno.ENOENT, "gone"),
    asyncpg.UniqueViolationError("duplicate"),
    asyncpg.DataError("bad"),
    asyncpg.InterfaceError("cannot call Connection.fetch(): connection has been released"),
    asyncpg.InternalClientError("unexpected codec"),
    BadRequest("no"),
    ServerNotFound("x"),
    RemoteError(),
]


@pytest.mark.parametrize("exc", OUTAGES, ids=lambda e: type(e).__name__)
def test_outages_are_transient(exc: BaseException) -> None:
    assert is_transient(exc) and is_outage(exc)
    assert unavailable(exc).http_status == 503


@pytest.mark.parametrize("exc", PERMANENT, ids=lambda e: type(e).__name__)
def test_permanent_failures_are_not_retried(exc: BaseException) -> None:
    assert not is_transient(exc) and not is_outage(exc)


@pytest.mark.parametrize("exc", [RpcTimeout(), HostsNotReady()], ids=lambda e: type(e).__name__)
def test_a_slow_service_or_silent_hosts_are_retried_but_are_no_outage_of_ones_own(exc) -> None:
    # Retried, but they must not restart the outage clock: one scheduler waiting for
    # hosts would otherwise never see any host as dead.
    assert is_transient(exc) and not is_outage(exc)


def test_unavailable_names_what_was_away_without_its_words() -> None:
    fault = unavailable(asyncpg.CannotConnectNowError("secret dsn postgresql://x:y@h/db"))
    assert isinstance(fault, DatabaseUnavailable) and "postgresql" not in fault.message
    assert fault.headers == {"Retry-After": "5"}
    assert isinstance(unavailable(amqp.ChannelInvalidStateError("x")), BrokerUnavailable)


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    delays = RetryPolicy(first_delay_s=1, max_delay_s=8, deadline_s=60).delays(random.Random(7))
    got = [next(delays) for _ in range(7)]
    nominal = [1, 2, 4, 8, 8, 8, 8]
    assert all(n / 2 <= d <= n for d, n in zip(got, nominal)), got
