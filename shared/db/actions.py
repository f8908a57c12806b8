"""SQL for instance actions and their events (spec section 4.4.20).

The API starts an action for every operation it accepts on a server, keyed by
the request id; the services that then do the work record events on it, found
by (server, request id) (an :class:`ActionRef`), since the request id travels
with every RPC and is handed to each handler explicitly. Recording is best
effort for events: a missing action (an older request) is not an error.

A server runs one task at a time, so the action that set its task is its newest
unfinished one: work that has no request id of its own (the scheduler's sweep,
the agent's reconcile loop) ends that one (:func:`finish` with no request id).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NamedTuple
from uuid import UUID

import asyncpg
import structlog

log = structlog.get_logger(__name__)


class ActionRef(NamedTuple):
    """Names one instance action: the server and the request that started it."""

    server_id: UUID
    request_id: str | None
    """None: the server's newest unfinished action (see the module docstring)."""

_START_ACTION = """
INSERT INTO instance_actions (server_id, project_id, user_id, action, request_id, message)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (server_id, request_id) DO NOTHING"""

_FINISH_ACTION = """
UPDATE instance_actions SET finish_time = now(), message = coalesce($3, message)
 WHERE server_id = $1 AND request_id = $2 AND finish_time IS NULL"""

_START_EVENT = """
INSERT INTO instance_action_events (action_id, event, host)
SELECT id, $3, $4 FROM instance_actions WHERE server_id = $1 AND request_id = $2
ON CONFLICT (action_id, event) DO UPDATE SET start_time = now(), finish_time = NULL,
       result = NULL, traceback = NULL, host = excluded.host"""

_FINISH_EVENT = """
UPDATE instance_action_events e SET finish_time = now(), result = $4, traceback = $5
  FROM instance_actions a
 WHERE e.action_id = a.id AND a.server_id = $1 AND a.request_id = $2 AND e.event = $3"""

_FINISH_NEWEST_OPEN = """
UPDATE instance_actions SET finish_time = now(), message = coalesce($2, message)
 WHERE id = (SELECT id FROM instance_actions WHERE server_id = $1 AND finish_time IS NULL
              ORDER BY start_time DESC, id DESC LIMIT 1)"""

_LIST = """
SELECT * FROM instance_actions WHERE server_id = $1 ORDER BY start_time DESC, id DESC"""

_GET = "SELECT * FROM instance_actions WHERE server_id = $1 AND request_id = $2"

_EVENTS = """
SELECT * FROM instance_action_events WHERE action_id = $1 ORDER BY start_time, id"""


async def start_action(conn: asyncpg.Connection, *, server_id: UUID, project_id: str,
                       user_id: str, action: str, request_id: str,
                       message: str | None = None) -> None:
    await conn.execute(_START_ACTION, server_id, project_id, user_id, action, request_id, message)


async def finish_action(conn: asyncpg.Connection, *, server_id: UUID, request_id: str,
                        message: str | None = None) -> None:
    await conn.execute(_FINISH_ACTION, server_id, request_id, message)


async def finish(conn: asyncpg.Connection, ref: ActionRef, message: str | None = None) -> None:
    """Finish the action ``ref`` names (the newest open one without a request id),
    with ``message`` when it ended in an error."""
    if ref.request_id is not None:
        await conn.execute(_FINISH_ACTION, ref.server_id, ref.request_id, message)
    else:
        await conn.execute(_FINISH_NEWEST_OPEN, ref.server_id, message)


_OPEN_REQUEST_ID = """
SELECT request_id FROM instance_actions WHERE server_id = $1 AND finish_time IS NULL
 ORDER BY start_time DESC, id DESC LIMIT 1"""


async def open_request_id(conn: asyncpg.Connection, server_id: UUID) -> str | None:
    """The request id of the server's newest unfinished action (the one that set its
    task: see the module docstring), if any."""
    return await conn.fetchval(_OPEN_REQUEST_ID, server_id)


async def list_for_server(conn: asyncpg.Connection, server_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(_LIST, server_id)


async def get(conn: asyncpg.Connection, server_id: UUID, request_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_GET, server_id, request_id)


async def events(conn: asyncpg.Connection, action_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(_EVENTS, action_id)


@asynccontextmanager
async def event(pool: asyncpg.Pool, ref: ActionRef, name: str, *,
                host: str | None = None) -> AsyncIterator[None]:
    """Record ``name`` on the action ``ref``: started on entry, finished Success or
    Error (with the error) on exit. Nothing is recorded without a request id."""
    server_id, request_id = ref
    if request_id is None:
        yield
        return
    await _quietly(pool, _START_EVENT, server_id, request_id, name, host)
    try:
        yield
    except BaseException as exc:
        await _quietly(pool, _FINISH_EVENT, server_id, request_id, name, "Error",
                       f"{type(exc).__name__}: {exc}")
        raise
    await _quietly(pool, _FINISH_EVENT, server_id, request_id, name, "Success", None)


async def _quietly(pool: asyncpg.Pool, sql: str, *args: object) -> None:
    # The work matters more than its record: a failed write is logged, not raised.
    try:
        async with pool.acquire() as conn:
            await conn.execute(sql, *args)
    except Exception as exc:
        log.warning("actions.record_failed", error=str(exc))
