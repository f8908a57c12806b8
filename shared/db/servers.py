"""SQL for the ``servers`` and ``server_faults`` tables that more than one service writes.

Every state change is a guarded update: it names the task state it expects, so
two actors racing on one server cannot both move it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from shared.db import actions
from shared.errors import TaskStateConflict
from shared.states import TaskState, VmState

_GET = "SELECT * FROM servers WHERE id = $1"

_SET_TASK = """
UPDATE servers SET task_state = $2, updated_at = now()
 WHERE id = $1 AND vm_state = $3 AND task_state IS NOT DISTINCT FROM $4
RETURNING id"""

_PLACE = """
UPDATE servers SET host = $2, availability_zone = $3, updated_at = now()
 WHERE id = $1 AND vm_state = 'building' AND task_state = 'scheduling'
RETURNING id"""

_FINISH_BUILD = """
UPDATE servers SET vm_state = 'active', task_state = NULL, power_state = $2,
       launched_at = now(), updated_at = now()
 WHERE id = $1 AND vm_state = 'building' AND task_state = 'spawning'
RETURNING id"""

_SET_ADDRESSES = "UPDATE servers SET addresses = $2, updated_at = now() WHERE id = $1"

_SET_ERROR = """
UPDATE servers SET vm_state = 'error', task_state = NULL, updated_at = now()
 WHERE id = $1 AND vm_state <> 'deleted'
   AND ($2::text IS NULL OR task_state IS NOT DISTINCT FROM $2)
RETURNING id"""

_ADD_FAULT = """
INSERT INTO server_faults (server_id, code, message, details) VALUES ($1, $2, $3, $4)"""

_MARK_DELETED = """
UPDATE servers SET vm_state = 'deleted', task_state = NULL, power_state = 0,
       deleted_at = now(), updated_at = now(), addresses = '[]'
 WHERE id = $1 AND vm_state <> 'deleted'
RETURNING id"""

_UNDO_DELETE = """
UPDATE servers SET task_state = NULL, updated_at = now()
 WHERE id = $1 AND task_state = 'deleting' AND vm_state <> 'deleted'"""

# A delete already under way is not started twice, unless it has been stuck for
# longer than the caller's patience ($3 seconds): then it may be handed out again.
_START_DELETE = """
UPDATE servers SET task_state = 'deleting', updated_at = now()
 WHERE id = $1 AND project_id = $2 AND vm_state <> 'deleted'
   AND (task_state IS DISTINCT FROM 'deleting' OR updated_at < now() - make_interval(secs => $3))
RETURNING host"""


async def get(conn: asyncpg.Connection, server_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(_GET, server_id)


async def set_task(conn: asyncpg.Connection, server_id: UUID, vm_state: VmState,
                   new: TaskState | None, expect: TaskState | None) -> None:
    """Move the task state from ``expect`` to ``new``; raise TaskStateConflict otherwise."""
    if await conn.fetchval(_SET_TASK, server_id, new, vm_state, expect) is None:
        raise TaskStateConflict(f"Instance {server_id} is not in task state {expect}.")


async def place(conn: asyncpg.Connection, server_id: UUID, host: str, zone: str) -> bool:
    """Record the scheduler's choice; False when the server left BUILD(scheduling)."""
    return await conn.fetchval(_PLACE, server_id, host, zone) is not None


async def finish_build(conn: asyncpg.Connection, server_id: UUID, power_state: int) -> bool:
    async with conn.transaction():
        if await conn.fetchval(_FINISH_BUILD, server_id, power_state) is None:
            return False
        await actions.finish_current(conn, server_id)
        return True


async def set_addresses(conn: asyncpg.Connection, server_id: UUID, ports: list[Any]) -> None:
    await conn.execute(_SET_ADDRESSES, server_id, ports)


async def set_error(conn: asyncpg.Connection, server_id: UUID, *, code: int, message: str,
                    details: str | None = None, expect: TaskState | None = None) -> bool:
    """Put the server in ERROR with a fault saying why; False if it was gone or moved on."""
    async with conn.transaction():
        if await conn.fetchval(_SET_ERROR, server_id, expect) is None:
            return False
        await conn.execute(_ADD_FAULT, server_id, code, message, details)
        await actions.finish_current(conn, server_id, message)
        return True


async def mark_deleted(conn: asyncpg.Connection, server_id: UUID) -> bool:
    async with conn.transaction():
        if await conn.fetchval(_MARK_DELETED, server_id) is None:
            return False
        await actions.finish_current(conn, server_id)
        return True


async def start_delete(conn: asyncpg.Connection, server_id: UUID, project_id: str,
                       *, stale_after_s: float = 300.0) -> tuple[bool, str | None]:
    """Claim the delete of a server: (claimed, host it lives on)."""
    row = await conn.fetchrow(_START_DELETE, server_id, project_id, stale_after_s)
    return (row is not None, row["host"] if row else None)


async def undo_delete(conn: asyncpg.Connection, server_id: UUID) -> None:
    """Give back a delete that could not be handed to the agent (the user may retry)."""
    await conn.execute(_UNDO_DELETE, server_id)


_BEGIN_TASK = """
UPDATE servers SET task_state = $3, updated_at = now()
 WHERE id = $1 AND project_id = $2 AND vm_state = ANY($4::text[]) AND task_state IS NULL
   AND deleted_at IS NULL
RETURNING host"""


async def begin_task(conn: asyncpg.Connection, server_id: UUID, project_id: str,
                     task: TaskState, allowed: list[str]) -> tuple[bool, str | None]:
    """Start ``task`` on a server whose vm_state is one of ``allowed`` and that has no
    task in flight: (started, host). Two actions racing cannot both start."""
    row = await conn.fetchrow(_BEGIN_TASK, server_id, project_id, task, allowed)
    return (row is not None, row["host"] if row else None)
