"""SQL for the ``servers`` and ``server_faults`` tables that more than one service writes.

Every state change is a guarded update: it names the task state it expects, so
two actors racing on one server cannot both move it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from shared import outbox
from shared.contracts import volume as volume_contract
from shared.contracts.volume import DeleteVolume
from shared.db import actions, volumes
from shared.db.actions import ActionRef
from shared.errors import TaskStateConflict
from shared.states import DELETE, TaskState, Transition, VmState

_GET = "SELECT * FROM servers WHERE id = $1"

_SET_TASK = """
UPDATE servers SET task_state = $2, updated_at = now()
 WHERE id = $1 AND vm_state = $3 AND task_state IS NOT DISTINCT FROM $4 AND host = $5
RETURNING id"""

_PLACE = """
UPDATE servers SET host = $2, availability_zone = $3, updated_at = now()
 WHERE id = $1 AND vm_state = 'building' AND task_state = 'scheduling'
RETURNING id"""

_FINISH_BUILD = """
UPDATE servers SET vm_state = 'active', task_state = NULL, power_state = $2,
       launched_at = now(), updated_at = now()
 WHERE id = $1 AND vm_state = 'building' AND task_state = 'spawning' AND host = $3
RETURNING id"""

_SET_ADDRESSES = "UPDATE servers SET addresses = $2, updated_at = now() WHERE id = $1"

_SET_ERROR = """
UPDATE servers SET vm_state = 'error', task_state = NULL, updated_at = now()
 WHERE id = $1 AND vm_state <> 'deleted'
   AND ($2::text[] IS NULL OR task_state = ANY($2::text[]))
   AND ($3::text IS NULL OR host = $3)
   AND ($4::text IS NULL OR (vm_state = $4 AND task_state IS NULL))
RETURNING id"""

_DROP_BUILD_REQUEST = "DELETE FROM build_requests WHERE server_id = $1"

_ADD_FAULT = """
INSERT INTO server_faults (server_id, code, message, details) VALUES ($1, $2, $3, $4)"""

_MARK_DELETED = """
UPDATE servers SET vm_state = 'deleted', task_state = NULL, power_state = 0,
       deleted_at = now(), updated_at = now(), addresses = '[]'
 WHERE id = $1 AND vm_state <> 'deleted'
RETURNING id"""

_UNDO_DELETE = """
UPDATE servers SET task_state = $2, updated_at = now()
 WHERE id = $1 AND task_state = 'deleting' AND vm_state <> 'deleted'"""

# A delete already under way is not started twice, unless it has been stuck for
# longer than the caller's patience ($3 seconds): then it may be handed out again.
_START_DELETE = """
UPDATE servers s SET task_state = 'deleting', task_request_id = $4, updated_at = now()
  FROM (SELECT id, task_state FROM servers WHERE id = $1 FOR UPDATE) AS before
 WHERE s.id = before.id AND s.project_id = $2 AND s.vm_state = ANY($5::text[])
   AND (s.task_state IS DISTINCT FROM 'deleting'
        OR s.updated_at < now() - make_interval(secs => $3))
RETURNING s.host, before.task_state AS previous_task"""


async def get(conn: asyncpg.Connection, server_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(_GET, server_id)


async def set_task(conn: asyncpg.Connection, server_id: UUID, vm_state: VmState,
                   new: TaskState | None, expect: TaskState | None, *, host: str) -> None:
    """Move the task state of a server on ``host`` from ``expect`` to ``new``; raise
    TaskStateConflict otherwise (another host has it now, or it moved on)."""
    if await conn.fetchval(_SET_TASK, server_id, new, vm_state, expect, host) is None:
        raise TaskStateConflict(f"Instance {server_id} is not in task state {expect}.")


async def place(conn: asyncpg.Connection, server_id: UUID, host: str, zone: str) -> bool:
    """Record the scheduler's choice; False when the server left BUILD(scheduling)."""
    return await conn.fetchval(_PLACE, server_id, host, zone) is not None


async def finish_build(conn: asyncpg.Connection, server_id: UUID, power_state: int, *,
                       host: str, request_id: str | None) -> bool:
    """BUILD(spawning) on ``host`` -> ACTIVE; the build request is spent. False if the
    server moved on (deleted, or scheduled again on another host)."""
    async with conn.transaction():
        if await conn.fetchval(_FINISH_BUILD, server_id, power_state, host) is None:
            return False
        await conn.execute(_DROP_BUILD_REQUEST, server_id)
        await actions.finish(conn, ActionRef(server_id, request_id))
        return True


async def set_addresses(conn: asyncpg.Connection, server_id: UUID, ports: list[Any]) -> None:
    await conn.execute(_SET_ADDRESSES, server_id, ports)


async def set_error(conn: asyncpg.Connection, server_id: UUID, *, code: int, message: str,
                    details: str | None = None,
                    expect: TaskState | Sequence[TaskState] | None = None,
                    host: str | None = None, idle_in: VmState | None = None,
                    request_id: str | None = None) -> bool:
    """Put the server in ERROR with a fault saying why and finish the action of
    ``request_id`` (the newest open one if None) with that message; False if it
    was gone or moved on (out of task ``expect``, off ``host``, or no longer idle in
    vm_state ``idle_in``, when given)."""
    tasks = None if expect is None else (
        [expect.value] if isinstance(expect, TaskState) else [t.value for t in expect])
    async with conn.transaction():
        if await conn.fetchval(_SET_ERROR, server_id, tasks, host,
                               idle_in.value if idle_in else None) is None:
            return False
        await conn.execute(_ADD_FAULT, server_id, code, message, details)
        await conn.execute(_DROP_BUILD_REQUEST, server_id)
        await actions.finish(conn, ActionRef(server_id, request_id), message)
        return True


async def mark_deleted(conn: asyncpg.Connection, server_id: UUID, *,
                       request_id: str | None = None) -> bool:
    """The server is DELETED; the delete's action (``request_id``, else the newest
    open one) is finished; its volumes are released (``volumes.release_server``:
    free again, or deleted with it when ``delete_on_termination``). Every way a
    server is deleted ends here, so no volume is ever left on a deleted server.
    False if it already was."""
    async with conn.transaction():
        if await conn.fetchval(_MARK_DELETED, server_id) is None:
            return False
        await conn.execute(_DROP_BUILD_REQUEST, server_id)
        await actions.finish(conn, ActionRef(server_id, request_id))
        _, doomed = await volumes.release_server(conn, server_id, request_id=request_id)
        for volume_id in doomed:
            # Lease 0: the first relay to look (every service runs one) sends it.
            await outbox.put(conn, volume_contract.QUEUE, DeleteVolume(volume_id=volume_id),
                             request_id=request_id, lease_s=0)
        return True


class DeleteClaim(NamedTuple):
    claimed: bool
    host: str | None
    previous_task: str | None


async def start_delete(conn: asyncpg.Connection, server_id: UUID, project_id: str,
                       *, request_id: str | None, stale_after_s: float = 300.0) -> DeleteClaim:
    """Claim the delete of a server (from any state ``DELETE.allowed_from`` names) for
    ``request_id``: whether claimed, its host, and the task it had."""
    row = await conn.fetchrow(_START_DELETE, server_id, project_id, stale_after_s, request_id,
                              [v.value for v in DELETE.allowed_from])
    if row is None:
        return DeleteClaim(False, None, None)
    previous = row["previous_task"]
    return DeleteClaim(True, row["host"], None if previous == "deleting" else previous)


async def undo_delete(conn: asyncpg.Connection, server_id: UUID,
                      previous_task: str | None = None, *, request_id: str | None = None,
                      message: str = "Error: the delete could not be carried out") -> None:
    """Give back a delete that could not be carried out (the user may retry): the
    server gets back the task it had, so a build in flight carries on, and the
    delete's action (``request_id``) is finished with ``message``."""
    async with conn.transaction():
        await conn.execute(_UNDO_DELETE, server_id, previous_task)
        if request_id is not None:
            await actions.finish(conn, ActionRef(server_id, request_id), message)


_BEGIN_TASK = """
UPDATE servers SET task_state = $3, task_request_id = $5, updated_at = now()
 WHERE id = $1 AND project_id = $2 AND vm_state = ANY($4::text[]) AND task_state IS NULL
   AND deleted_at IS NULL
RETURNING host"""


async def begin_task(conn: asyncpg.Connection, server_id: UUID, project_id: str,
                     transition: Transition, *, request_id: str) -> tuple[bool, str | None]:
    """Start ``transition``'s task on a server in one of its allowed vm_states with no
    task in flight, for ``request_id`` (only its message may act on the task):
    (started, host). Two actions racing cannot both start."""
    row = await conn.fetchrow(_BEGIN_TASK, server_id, project_id, transition.task.value,
                              [v.value for v in transition.allowed_from], request_id)
    return (row is not None, row["host"] if row else None)


# ---- rebuild and snapshot (issue 4: sections 4.4.1.18-19) --------------------

_SET_REBUILD_TARGET = """
UPDATE servers SET image_id = $2, name = $3, metadata = $4, updated_at = now()
 WHERE id = $1 AND task_state = 'rebuilding' AND deleted_at IS NULL
RETURNING id"""

# From ERROR a rebuild ends ACTIVE; from SHUTOFF it ends SHUTOFF again (as in Nova).
_FINISH_REBUILD = """
UPDATE servers SET vm_state = $2, task_state = NULL, power_state = $3, launched_at = now(),
       updated_at = now()
 WHERE id = $1 AND task_state = 'rebuilding' AND deleted_at IS NULL
RETURNING id"""

_END_TASK = """
UPDATE servers SET task_state = NULL, updated_at = now()
 WHERE id = $1 AND task_state = $2 AND deleted_at IS NULL
RETURNING id"""


async def set_rebuild_target(conn: asyncpg.Connection, server_id: UUID, *, image_id: UUID,
                             name: str, metadata: dict[str, str]) -> bool:
    """Record what a rebuild under way makes of the server (its image, name, metadata);
    False if the server is no longer rebuilding."""
    return await conn.fetchval(_SET_REBUILD_TARGET, server_id, image_id, name,
                               metadata) is not None


async def finish_rebuild(conn: asyncpg.Connection, server_id: UUID, vm_state: VmState,
                         power_state: int, *, request_id: str | None) -> bool:
    """REBUILD -> ``vm_state`` with the guest's power state; False if the server moved on
    (deleted meanwhile)."""
    async with conn.transaction():
        if await conn.fetchval(_FINISH_REBUILD, server_id, vm_state.value, power_state) is None:
            return False
        await actions.finish(conn, ActionRef(server_id, request_id))
        return True


async def end_task(conn: asyncpg.Connection, server_id: UUID, expect: TaskState,
                   message: str | None = None, *, request_id: str | None) -> bool:
    """Clear the task ``expect`` (the vm_state stays) and finish its action; False if the
    server is in another task (or gone)."""
    async with conn.transaction():
        if await conn.fetchval(_END_TASK, server_id, expect.value) is None:
            return False
        await actions.finish(conn, ActionRef(server_id, request_id), message)
        return True


async def fail_task(conn: asyncpg.Connection, server_id: UUID, expect: TaskState, *, code: int,
                    message: str, details: str | None = None,
                    request_id: str | None) -> bool:
    """Clear the failed task ``expect`` keeping the vm_state (the guest is as it was),
    with a fault saying why; False if the server is in another task (or gone)."""
    async with conn.transaction():
        if await conn.fetchval(_END_TASK, server_id, expect.value) is None:
            return False
        await conn.execute(_ADD_FAULT, server_id, code, message, details)
        await actions.finish(conn, ActionRef(server_id, request_id), message)
        return True


# ---- reboot, stop/start, rescue (issue 4: sections 4.4.1.17, 4.4.14, 4.4.25) --

_COMPLETE_TASK = """
UPDATE servers SET vm_state = $3, task_state = NULL, power_state = $4, updated_at = now()
 WHERE id = $1 AND task_state = $2 AND deleted_at IS NULL
RETURNING id"""


async def complete_task(conn: asyncpg.Connection, server_id: UUID, expect: TaskState, *,
                        vm_state: VmState, power_state: int, request_id: str | None) -> bool:
    """The action of task ``expect`` worked: the server is ``vm_state`` with the guest's
    ``power_state``, its task cleared and its action finished. False if the server
    is in another task (deleted, or failed by the sweep, meanwhile)."""
    async with conn.transaction():
        if await conn.fetchval(_COMPLETE_TASK, server_id, expect.value, vm_state.value,
                               power_state) is None:
            return False
        await actions.finish(conn, ActionRef(server_id, request_id))
        return True


async def error_task(conn: asyncpg.Connection, server_id: UUID, expect: TaskState, *, code: int,
                     message: str, details: str | None = None,
                     request_id: str | None) -> bool:
    """The action of task ``expect`` failed or was lost: ERROR with a fault saying why,
    and the action finished with that message. False if the server is in another
    task (or gone). Without a request id (the scheduler's sweep, the agent's
    reconcile loop) the action is the server's newest unfinished one, the one that
    set the task: a server runs one task at a time."""
    return await set_error(conn, server_id, code=code, message=message, details=details,
                           expect=expect, request_id=request_id)


_RECORD_POWER = """
UPDATE servers SET power_state = $2, updated_at = now()
 WHERE id = $1 AND deleted_at IS NULL AND task_state IS NULL AND power_state <> $2
RETURNING id"""


async def record_power(conn: asyncpg.Connection, server_id: UUID, power_state: int) -> bool:
    """Record what the hypervisor reports for a server with no task in flight (the
    reconcile loop); False if it had a task meanwhile or the value was already so."""
    return await conn.fetchval(_RECORD_POWER, server_id, power_state) is not None


_IN_TASK_ON_HOST = """
SELECT * FROM servers
 WHERE host = $1 AND deleted_at IS NULL AND task_state = ANY($2::text[])
 ORDER BY updated_at"""


async def in_task_on_host(conn: asyncpg.Connection, host: str,
                          tasks: list[TaskState]) -> list[asyncpg.Record]:
    """The live servers of ``host`` whose task state is one of ``tasks``, oldest first."""
    return await conn.fetch(_IN_TASK_ON_HOST, host, [t.value for t in tasks])
