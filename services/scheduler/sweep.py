"""The sweep that keeps builds, actions and deletes from waiting forever.

Every ``sweep_interval_s`` a scheduler looks for work that can no longer finish:

* a build on a host that counts as down (``shared.db.hosts``) is scheduled again
  on another host (``reschedule``), up to ``max_attempts`` hosts in all; then it
  ends in ERROR with a fault naming each host and why it failed;
* a build whose request was never placed within ``scheduling_timeout_s``, or
  that has not moved for ``build_timeout_s``, ends in ERROR with a fault: the
  backstop when a message was dead-lettered or an agent hangs;
* an action (reboot, stop, start, rescue, unrescue, rebuild, snapshot) on a
  host that counts as down, or still in its task ``action_timeout_s`` after it
  began, ends in ERROR with a fault naming the action (a failed snapshot's image
  with it). The claim stays: the server still lives on its host;
* a delete on a host that counts as down is finished without it
  (``shared.teardown``).

"Down" is never judged from a stale view: after the database or this scheduler
comes back, every host first gets a full ``service_down_time_s`` to heartbeat
(``OutageClock``). Likewise the timeouts: work is failed for taking too long only
once this scheduler has been up, and has reached the database and the broker,
for the whole timeout; an outage (during which the API goes on accepting work
into its outbox) restarts every clock. Every move is a guarded update on the state the sweep saw,
so work that finishes meanwhile is left alone, and several schedulers may sweep
at once.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import structlog

from services.scheduler.reschedule import reschedule
from services.scheduler.settings import SchedulerSettings
from shared.contracts.network import NetworkClient
from shared.db import hosts, images, servers
from shared.outbox import Relay
from shared.retry import OutageClock
from shared.states import ACTIONS_BY_TASK, BUILD_SEQUENCE, TaskState
from shared.teardown import delete_without_host

log = structlog.get_logger(__name__)

_BUILD_TASKS = [t.value for t in BUILD_SEQUENCE]

_LOST_IN_SCHEDULING = """
SELECT id, task_state FROM servers
 WHERE vm_state = 'building' AND task_state = 'scheduling' AND host IS NULL
   AND deleted_at IS NULL AND updated_at < now() - make_interval(secs => $1)"""

_BUILD_TIMED_OUT = """
SELECT id, task_state FROM servers
 WHERE vm_state = 'building' AND deleted_at IS NULL AND task_state = ANY($2::text[])
   AND updated_at < now() - make_interval(secs => $1)"""

_BUILDING_ON = """
SELECT id, host FROM servers
 WHERE vm_state = 'building' AND deleted_at IS NULL AND task_state = ANY($2::text[])
   AND host = ANY($1::text[])"""

_ACTION_ON = """
SELECT id, task_state, host FROM servers
 WHERE deleted_at IS NULL AND task_state = ANY($2::text[]) AND host = ANY($1::text[])"""

_ACTION_TIMED_OUT = """
SELECT id, task_state FROM servers
 WHERE deleted_at IS NULL AND task_state = ANY($2::text[])
   AND updated_at < now() - make_interval(secs => $1)"""

_DELETING_ON = """
SELECT id FROM servers
 WHERE task_state = 'deleting' AND vm_state <> 'deleted' AND host = ANY($1::text[])"""


def action_label(task: TaskState) -> str:
    """How a fault names the action of ``task`` (``reboot``, ``stop (os-stop)``...)."""
    return ACTIONS_BY_TASK[task].called


class BuildSweeper:
    def __init__(self, pool: asyncpg.Pool, settings: SchedulerSettings,
                 network: NetworkClient | None = None, *, relay: Relay | None = None,
                 outages: OutageClock | None = None) -> None:
        self._pool = pool
        self._settings = settings
        self._network = network
        self._relay = relay
        self._outages = outages

    def _healthy_for(self) -> float:
        return self._outages.healthy_for() if self._outages is not None else float("inf")

    async def sweep(self) -> int:
        """Deal with every build, action and delete that can no longer finish where it
        is; return how many servers were dealt with."""
        s = self._settings
        dealt = 0
        async with self._pool.acquire() as conn:
            down = await hosts.down_hosts(conn, s.service_down_time_s,
                                          healthy_for_s=self._healthy_for())
            if down:
                dealt += await self._reschedule_builds(conn, down)
                dealt += await self._fail_actions_on(conn, down)
            healthy_for = self._healthy_for()
            if healthy_for >= s.action_timeout_s:
                dealt += await self._fail_timed_out_actions(conn)
            if healthy_for >= s.scheduling_timeout_s:
                for row in await conn.fetch(_LOST_IN_SCHEDULING, s.scheduling_timeout_s):
                    dealt += await self._fail_build(
                        conn, row["id"], row["task_state"],
                        "Build timed out while scheduling: no scheduler placed the server "
                        f"within {s.scheduling_timeout_s:g} s.")
            if healthy_for >= s.build_timeout_s:
                for row in await conn.fetch(_BUILD_TIMED_OUT, s.build_timeout_s, _BUILD_TASKS):
                    dealt += await self._fail_build(
                        conn, row["id"], row["task_state"],
                        f"Build did not finish within {s.build_timeout_s:g} s.")
            stuck_deletes = ([r["id"] for r in await conn.fetch(_DELETING_ON, down)]
                             if down else [])
        if self._network is not None:
            for sid in stuck_deletes:
                try:
                    await delete_without_host(self._pool, self._network, sid)
                    dealt += 1
                except Exception as exc:  # tried again next sweep
                    log.warning("scheduler.stuck_delete_failed", server_id=str(sid),
                                error=str(exc))
        return dealt

    async def _reschedule_builds(self, conn: asyncpg.Connection, down: list[str]) -> int:
        s = self._settings
        reason = f"stopped responding (no heartbeat for {s.service_down_time_s:g} s)"
        lease_s = self._relay.lease_s if self._relay is not None else 15.0
        dealt = 0
        for row in await conn.fetch(_BUILDING_ON, down, _BUILD_TASKS):
            item = await reschedule(conn, row["id"], row["host"], reason,
                                    max_attempts=s.max_attempts, lease_s=lease_s)
            if item is not None and self._relay is not None:
                self._relay.send(item)
            dealt += 1
        return dealt

    async def _fail_actions_on(self, conn: asyncpg.Connection, down: list[str]) -> int:
        down_s = self._settings.service_down_time_s
        failed = 0
        for row in await conn.fetch(_ACTION_ON, down, [t.value for t in ACTIONS_BY_TASK]):
            task = TaskState(row["task_state"])
            failed += await self._fail_action(
                conn, row["id"], task,
                f"The {action_label(task)} of instance {row['id']} did not finish: compute "
                f"host {row['host']} stopped responding (no heartbeat for {down_s:g} s).")
        return failed

    async def _fail_timed_out_actions(self, conn: asyncpg.Connection) -> int:
        timeout_s = self._settings.action_timeout_s
        failed = 0
        for row in await conn.fetch(_ACTION_TIMED_OUT, timeout_s,
                                    [t.value for t in ACTIONS_BY_TASK]):
            task = TaskState(row["task_state"])
            failed += await self._fail_action(
                conn, row["id"], task,
                f"The {action_label(task)} of instance {row['id']} did not finish within "
                f"{timeout_s:g} s.")
        return failed

    async def _fail_action(self, conn: asyncpg.Connection, server_id: UUID, task: TaskState,
                           message: str) -> int:
        async with conn.transaction():
            if not await servers.error_task(conn, server_id, task, code=500, message=message,
                                            details=f"task {task.value} swept", request_id=None):
                return 0  # it finished (or was deleted) meanwhile
            if task is TaskState.IMAGE_SNAPSHOT:
                # The image being saved will never be: fail it with its server's task.
                await images.fail_saving_of_server(conn, server_id)
        log.warning("scheduler.action_stuck", server_id=str(server_id), task_state=task.value,
                    reason=message)
        return 1

    async def _fail_build(self, conn: asyncpg.Connection, server_id: UUID, task: str,
                          message: str) -> int:
        async with conn.transaction():
            if not await servers.set_error(conn, server_id, code=500, message=message,
                                           expect=TaskState(task)):
                return 0
            await hosts.release(conn, server_id)
        log.warning("scheduler.build_orphaned", server_id=str(server_id), reason=message)
        return 1
