"""The outbox: every message that accepted work depends on is written in the same
transaction as that work's rows, and a relay publishes it.

Why: once the API has answered 202, the work must not depend on a message that
exists only in the API process's memory. A message written with its rows is
there exactly when the rows are (never a server in BUILD with no build request
on its way, never a build request for a server that was not written), survives
a crash of the process between commit and publish, and waits out a broker that
is down: the API keeps accepting work through a broker outage and the relay
delivers it when the broker is back. Consumers are idempotent (delivery is at
least once, see ``shared.rpc.server``), so a row published twice (its relay
died between the publish and the delete) is harmless.

How: :func:`put` adds a row, leased (``claimed_until``) to the process that
wrote it, and returns an :class:`Item`; after commit, that process hands the
item to its :class:`Relay` (``relay.send(item)``), which publishes it at once
and deletes the row. If the publish fails, the relay keeps the item and tries
again every ``interval_s``, renewing its lease. If the process dies, the lease
lapses and any relay (every API process and the scheduler run one) claims the
row and publishes it.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import asyncpg
import msgspec
import structlog

from shared.retry import describe
from shared.rpc import RpcClient
from shared.rpc.envelope import encoder

log = structlog.get_logger(__name__)

_PUT = """
INSERT INTO outbox (queue, body, request_id, claimed_until)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
RETURNING id"""

_DELETE = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"

_RENEW = """
UPDATE outbox SET claimed_until = now() + make_interval(secs => $2)
 WHERE id = ANY($1::bigint[])"""

# Rows whose lease lapsed: their writer (or the relay that claimed them) is gone.
_CLAIM_LAPSED = """
UPDATE outbox SET claimed_until = now() + make_interval(secs => $1), attempts = attempts + 1
 WHERE id IN (SELECT id FROM outbox WHERE claimed_until < now() AND NOT (id = ANY($3::bigint[]))
               ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING id, queue, body, request_id"""


class Item(NamedTuple):
    """One outbox row, as its relay publishes it."""

    id: int
    queue: str
    body: bytes
    request_id: str | None


async def put(conn: asyncpg.Connection, queue: str, msg: msgspec.Struct, *,
              request_id: str | None, lease_s: float) -> Item:
    """Write ``msg`` for ``queue`` in the caller's transaction; hand the returned item
    to the relay once that transaction has committed."""
    body = encoder.encode(msg)
    row_id = await conn.fetchval(_PUT, queue, body, request_id, lease_s)
    return Item(row_id, queue, body, request_id)


class Relay:
    """Publishes outbox rows: those this process wrote, then those nobody holds."""

    def __init__(self, pool: asyncpg.Pool, rpc: RpcClient, *, lease_s: float = 15.0,
                 interval_s: float = 1.0, batch: int = 200) -> None:
        self.lease_s = lease_s
        self._pool = pool
        self._rpc = rpc
        self._interval_s = interval_s
        self._batch = batch
        self._pending: dict[int, Item] = {}
        """Rows this relay holds and has not published yet."""
        self._published: set[int] = set()
        """Rows published whose delete has not gone through yet."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def send(self, *items: Item) -> None:
        """Publish these (committed) rows soon; returns at once."""
        for item in items:
            self._pending[item.id] = item
        self._wake.set()

    @property
    def backlog(self) -> int:
        """Rows this relay holds that are not published yet."""
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, grace_s: float = 5.0) -> None:
        """Publish what can be in ``grace_s``, then stop; the rest is left to the leases."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        try:
            await asyncio.wait_for(self.flush(), grace_s)
        except Exception as exc:  # the broker or database is away: the lease covers it
            log.info("outbox.stop_unflushed", pending=len(self._pending), error=describe(exc))

    async def _run(self) -> None:
        renew_every = max(self.lease_s / 3, self._interval_s)
        loop = asyncio.get_running_loop()
        last_renew = last_claim = loop.time()
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
                now = loop.time()
                if self._pending and now - last_renew >= renew_every:
                    await self._renew()
                    last_renew = now
                if now - last_claim >= self._interval_s:
                    last_claim = now
                    if await self._claim_lapsed():
                        await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or broker is away: next time
                log.warning("outbox.relay_failed", pending=len(self._pending),
                            error=describe(exc))

    async def flush(self) -> int:
        """Publish every row held, delete those published; how many were published."""
        items = list(self._pending.values())
        if items:
            results = await asyncio.gather(
                *(self._rpc.cast_raw(i.queue, i.body, request_id=i.request_id) for i in items),
                return_exceptions=True)
            for item, result in zip(items, results):
                if not isinstance(result, BaseException):
                    self._pending.pop(item.id, None)
                    self._published.add(item.id)
            published = sum(not isinstance(r, BaseException) for r in results)
            if published < len(items):
                log.warning("outbox.publish_failed", failed=len(items) - published,
                            pending=len(self._pending))
        else:
            published = 0
        if self._published:
            done = list(self._published)
            async with self._pool.acquire() as conn:
                await conn.execute(_DELETE, done)
            self._published.difference_update(done)
        return published

    async def _renew(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(_RENEW, list(self._pending), self.lease_s)

    async def _claim_lapsed(self) -> int:
        async with self._pool.acquire() as conn:
            held = [*self._pending, *self._published]  # lapsed while the database was away
            rows = await conn.fetch(_CLAIM_LAPSED, self.lease_s, self._batch, held)
        for r in rows:
            self._pending[r["id"]] = Item(r["id"], r["queue"], bytes(r["body"]), r["request_id"])
        if rows:
            log.info("outbox.claimed_lapsed", count=len(rows))
        return len(rows)
