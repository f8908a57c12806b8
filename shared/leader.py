"""Leader election for the cluster-wide periodic jobs: one replica at a time runs them.

Several replicas of a service (schedulers, volume and network services, API and
console-proxy processes) each register the same periodic jobs: the build and
volume sweeps, the fixed IP reservation sweep, the token purges. Their updates
are guarded, so two replicas sweeping at once would not corrupt anything, but
they would do every round's work twice and race on it. So each such job runs
only where :class:`Leadership` says this process leads it.

How: the leader holds a PostgreSQL session advisory lock, ``pg_try_advisory_lock
(LOCK_CLASS, hashtext(job))``, on a connection it takes from its pool and keeps
while it leads. Each round, the holder checks that connection still answers;
the others try the lock (one statement) and give their connection back when it
is taken. A leader that dies, or whose connection is cut (database restart,
``pg_terminate_backend``, network), loses the lock with its session, and the
next replica to try takes it on its next round: there is no lease to expire,
and no round is run by two replicas while the lock's session lives.

A round already running when its leader's connection is cut may overlap the new
leader's first round; the jobs' guarded updates make that harmless, only rarer
work doubled.

Per-host jobs (the compute agent's heartbeat and reconcile) and per-process
ones (the outbox relay, which claims rows with leases and SKIP LOCKED; the
database probe) are not led: every process runs its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import asyncpg
import structlog

from shared.retry import describe

log = structlog.get_logger(__name__)

LOCK_CLASS = 0x6C656164  # "lead": keeps these locks apart from the others (two-key form)

_TRY_LOCK = "SELECT pg_try_advisory_lock($1::int4, hashtext($2))"
_ALIVE = "SELECT 1"
_UNLOCK = "SELECT pg_advisory_unlock($1::int4, hashtext($2))"


class Leadership:
    """Whether this process leads ``job`` now (see the module's docstring)."""

    def __init__(self, pool: asyncpg.Pool, job: str) -> None:
        self._pool = pool
        self.job = job
        self._conn: asyncpg.Connection | None = None
        self._held = AsyncExitStack()

    @property
    def leading(self) -> bool:
        """As of the last :meth:`check` (for health pages). While leading, one of the
        pool's connections is held: resign before closing the pool, which waits
        for it."""
        return self._conn is not None

    async def check(self) -> bool:
        """Keep leading if the lock's connection answers, else try to take the lock."""
        if self._conn is not None:
            try:
                await self._conn.fetchval(_ALIVE)
                return True
            except Exception as exc:  # noqa: BLE001 - whatever it is, the lock may be gone
                log.warning("leader.lost", job=self.job, error=describe(exc))
                await self._drop()
        async with AsyncExitStack() as attempt:
            conn = await attempt.enter_async_context(self._pool.acquire())
            if not await conn.fetchval(_TRY_LOCK, LOCK_CLASS, self.job):
                return False  # the connection goes back to the pool
            self._held = attempt.pop_all()
        self._conn = conn
        log.info("leader.elected", job=self.job)
        return True

    def guard(self, fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """``fn`` run only in the rounds this process leads."""
        async def round_() -> None:
            if await self.check():
                await fn()
        return round_

    async def resign(self) -> None:
        """Give up the lock (at shutdown), so another replica takes over at once."""
        if self._conn is not None:
            log.info("leader.resigned", job=self.job)
            await self._drop()

    async def _drop(self) -> None:
        # The pool does not reset session state (shared.db.pool): the lock is
        # unlocked here, and a connection that cannot say it did is closed
        # rather than given back still holding it. A broken one the pool discards.
        conn, self._conn = self._conn, None
        held, self._held = self._held, AsyncExitStack()
        try:
            if conn is not None and not conn.is_closed():
                try:
                    await conn.fetchval(_UNLOCK, LOCK_CLASS, self.job)
                except Exception:  # noqa: BLE001 - it may hold the lock still
                    conn.terminate()
            await held.aclose()
        except Exception as exc:  # noqa: BLE001 - the pool discards what it cannot reset
            log.warning("leader.release_failed", job=self.job, error=describe(exc))
