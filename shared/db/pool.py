"""The asyncpg pool every service uses: JSON columns decoded by msgspec, and
every wait bounded.

No operation may hang on a database that is gone or stuck: connecting, waiting
for a pooled connection and each statement all have a timeout
(``DatabaseSettings``). A timeout or a lost connection raises, and
``shared.retry.is_transient`` calls it transient: the API answers 503, a worker
retries the message. Connections broken by a database restart are dropped by
the pool and replaced on the next acquire, so services recover by themselves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec

from shared.config import DatabaseSettings
from shared.errors import DatabaseUnavailable
from shared.metrics import POOL_ACQUIRE, POOL_ACQUIRE_FAILURES, track_pool

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, schema="pg_catalog", format="text",
                                  encoder=lambda v: _encode(v).decode(), decoder=_decode)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection given back to the pool needs beyond asyncpg's own reset
    (which rolls back a transaction left open): nothing.

    asyncpg's default reset runs ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN
    *; RESET ALL`` on every release: a round trip per ``acquire()``, about a fifth
    of the statements of a boot. No code here leaves session state on a pooled
    connection (no SET, LISTEN or cursor outside a transaction); the one session
    lock, ``shared.leader``'s, is unlocked by its holder before it gives the
    connection back.
    """


async def connect(dsn: str, *, timeout: float = 10.0) -> asyncpg.Connection:
    """One connection with the same codecs as the pool's (for commands and tests)."""
    conn = await asyncpg.connect(dsn, timeout=timeout)
    await _init_connection(conn)
    return conn


class Pool(asyncpg.Pool):
    """An asyncpg pool whose ``acquire`` waits at most ``acquire_timeout_s`` by default,
    and says ``DatabaseUnavailable`` when it cannot get a connection (the database
    refuses, is unreachable, or the wait ran out)."""

    def __init__(self, *args: Any, acquire_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout_s = acquire_timeout_s

    def acquire(self, *, timeout: float | None = None) -> _Acquire:  # type: ignore[override]
        return _Acquire(super().acquire(
            timeout=self.acquire_timeout_s if timeout is None else timeout))


class _Acquire:
    """``async with pool.acquire() as conn`` with connection failures named for what
    they are (a raw ConnectionRefusedError does not say it was the database)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def __aenter__(self) -> asyncpg.Connection:
        started = time.perf_counter()
        try:
            conn = await self._inner.__aenter__()
        except (OSError, asyncio.TimeoutError) as exc:
            POOL_ACQUIRE_FAILURES.inc()
            raise DatabaseUnavailable() from exc
        POOL_ACQUIRE.observe(time.perf_counter() - started)
        return conn

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._inner.__aexit__(*exc_info)


async def create_pool(settings: DatabaseSettings) -> Pool:
    """Open a pool on ``settings.url``; JSON and JSONB map to Python values."""
    pool = Pool(settings.url, min_size=settings.pool_min, max_size=settings.pool_max,
                max_queries=50000, max_inactive_connection_lifetime=300.0,
                connect=None, setup=None, init=_init_connection, reset=_keep_session, loop=None,
                connection_class=asyncpg.Connection, record_class=asyncpg.Record,
                acquire_timeout_s=settings.acquire_timeout_s,
                timeout=settings.connect_timeout_s, command_timeout=settings.command_timeout_s)
    await pool
    track_pool(pool)
    return pool


@asynccontextmanager
async def pool_context(settings: DatabaseSettings) -> AsyncIterator[Pool]:
    pool = await create_pool(settings)
    try:
        yield pool
    finally:
        await pool.close()
