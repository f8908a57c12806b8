"""The sweep that keeps builds, and actions on built servers, from waiting forever.

A build can be orphaned three ways: its request was lost before any scheduler
placed it (BUILD(scheduling) with no host, for longer than
``scheduling_timeout_s``), the compute agent it was placed on stopped
heartbeating while the server was still building, or the build simply never
finished (a message dropped after an agent's database failed) within
``build_timeout_s``. Each time the server goes to ERROR with a fault saying why,
and the host's claim is released, so the user sees what happened and can delete
it. A delete stuck on a host that stopped heartbeating is finished here, without
the host (``shared.teardown``). Every move is a guarded update on the task
state the sweep saw, so a build that finishes meanwhile is left alone, and
several schedulers may sweep at once.

Actions (reboot, stop, start, rescue, unrescue, rebuild, snapshot) are swept the
same way: one whose host stopped heartbeating, or that is still in its task
``action_timeout_s`` after it began (its message was lost, or its agent hangs),
puts the server in ERROR with a fault naming the action that did not finish,
and finishes its instance action. The claim stays: the server still lives on
its host, and only a delete frees it. An agent that restarts first deals with
its own servers itself (``compute_agent.recover``).
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import structlog

from services.scheduler.settings import SchedulerSettings
from shared.contracts.network import NetworkClient
from shared.db import hosts, images, servers
from shared.teardown import delete_without_host
from shared.states import TaskState

log = structlog.get_logger(__name__)

_LOST_IN_SCHEDULING = """
SELECT id, task_state FROM servers
 WHERE vm_state = 'building' AND task_state = 'scheduling' AND host IS NULL
   AND deleted_at IS NULL AND updated_at < now() - make_interval(secs => $1)"""

_BUILD_TIMED_OUT = """
SELECT id, task_state FROM servers
 WHERE vm_state = 'building' AND deleted_at IS NULL
   AND task_state IN ('scheduling', 'networking', 'block_device_mapping', 'spawning')
   AND updated_at < now() - make_interval(secs => $1)"""

_DELETING_ON_DEAD_HOSTS = """
SELECT s.id FROM servers s JOIN compute_hosts h ON h.host = s.host
 WHERE s.task_state = 'deleting' AND s.vm_state <> 'deleted'
   AND h.last_heartbeat < now() - make_interval(secs => $1)"""

# Every task a user action on a built server sets (shared.states), and how a
# fault names it.
ACTION_TASKS: dict[TaskState, str] = {
    TaskState.REBOOTING: "reboot",
    TaskState.REBOOTING_HARD: "hard reboot",
    TaskState.POWERING_OFF: "stop (os-stop)",
    TaskState.POWERING_ON: "start (os-start)",
    TaskState.RESCUING: "rescue",
    TaskState.UNRESCUING: "unrescue",
    TaskState.REBUILDING: "rebuild",
    TaskState.IMAGE_SNAPSHOT: "snapshot (createImage)",
}

_ACTION_TIMED_OUT = """
SELECT id, task_state FROM servers
 WHERE deleted_at IS NULL AND task_state = ANY($2::text[])
   AND updated_at < now() - make_interval(secs => $1)"""

_ACTION_ON_DEAD_HOSTS = """
SELECT s.id, s.task_state, s.host FROM servers s JOIN compute_hosts h ON h.host = s.host
 WHERE s.deleted_at IS NULL AND s.task_state = ANY($2::text[])
   AND h.last_heartbeat < now() - make_interval(secs => $1)"""

_ON_DEAD_HOSTS = """
SELECT s.id, s.task_state, s.host FROM servers s JOIN compute_hosts h ON h.host = s.host
 WHERE s.vm_state = 'building' AND s.deleted_at IS NULL
   AND s.task_state IN ('scheduling', 'networking', 'block_device_mapping', 'spawning')
   AND h.last_heartbeat < now() - make_interval(secs => $1)"""


class BuildSweeper:
    def __init__(self, pool: asyncpg.Pool, settings: SchedulerSettings,
                 network: NetworkClient | None = None) -> None:
        self._pool = pool
        self._settings = settings
        self._network = network

    async def sweep(self) -> int:
        """Fail every orphaned build and stuck action, finish deletes stuck on dead
        hosts; return how many servers were dealt with."""
        failed = 0
        async with self._pool.acquire() as conn:
            failed += await self._fail_stuck_actions(conn)
            for row in await conn.fetch(_LOST_IN_SCHEDULING, self._settings.scheduling_timeout_s):
                failed += await self._fail(
                    conn, row["id"], row["task_state"],
                    "Build timed out while scheduling: no scheduler placed the server within "
                    f"{self._settings.scheduling_timeout_s:g} s.")
            for row in await conn.fetch(_ON_DEAD_HOSTS, self._settings.service_down_time_s):
                failed += await self._fail(
                    conn, row["id"], row["task_state"],
                    f"Compute host {row['host']} stopped responding during the build "
                    f"(no heartbeat for {self._settings.service_down_time_s:g} s).")
            for row in await conn.fetch(_BUILD_TIMED_OUT, self._settings.build_timeout_s):
                failed += await self._fail(
                    conn, row["id"], row["task_state"],
                    f"Build did not finish within {self._settings.build_timeout_s:g} s.")
            stuck_deletes = [r["id"] for r in await conn.fetch(
                _DELETING_ON_DEAD_HOSTS, self._settings.service_down_time_s)]
        if self._network is not None:
            for sid in stuck_deletes:
                try:
                    await delete_without_host(self._pool, self._network, sid)
                    failed += 1
                except Exception as exc:  # tried again next sweep
                    log.warning("scheduler.stuck_delete_failed", server_id=str(sid),
                                error=str(exc))
        return failed

    async def _fail_stuck_actions(self, conn: asyncpg.Connection) -> int:
        tasks = [t.value for t in ACTION_TASKS]
        down_s, timeout_s = self._settings.service_down_time_s, self._settings.action_timeout_s
        failed = 0
        for row in await conn.fetch(_ACTION_ON_DEAD_HOSTS, down_s, tasks):
            task = TaskState(row["task_state"])
            failed += await self._fail_action(
                conn, row["id"], task,
                f"The {ACTION_TASKS[task]} of instance {row['id']} did not finish: compute "
                f"host {row['host']} stopped responding (no heartbeat for {down_s:g} s).")
        for row in await conn.fetch(_ACTION_TIMED_OUT, timeout_s, tasks):
            task = TaskState(row["task_state"])
            failed += await self._fail_action(
                conn, row["id"], task,
                f"The {ACTION_TASKS[task]} of instance {row['id']} did not finish within "
                f"{timeout_s:g} s.")
        return failed

    async def _fail_action(self, conn: asyncpg.Connection, server_id: UUID, task: TaskState,
                           message: str) -> int:
        async with conn.transaction():
            if not await servers.error_task(conn, server_id, task, code=500, message=message,
                                            details=f"task {task.value} swept"):
                return 0  # it finished (or was deleted) meanwhile
            if task is TaskState.IMAGE_SNAPSHOT:
                # The image being saved will never be: fail it with its server's task.
                await images.fail_saving_of_server(conn, server_id)
        log.warning("scheduler.action_stuck", server_id=str(server_id), task_state=task.value,
                    reason=message)
        return 1

    async def _fail(self, conn: asyncpg.Connection, server_id: UUID, task: str,
                    message: str) -> int:
        async with conn.transaction():
            if not await servers.set_error(conn, server_id, code=500, message=message,
                                           expect=TaskState(task)):
                return 0
            await hosts.release(conn, server_id)
        log.warning("scheduler.build_orphaned", server_id=str(server_id), reason=message)
        return 1
