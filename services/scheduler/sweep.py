"""The sweep that keeps builds from waiting forever.

A build can be orphaned two ways: its request was lost before any scheduler
placed it (BUILD(scheduling) with no host, for longer than
``scheduling_timeout_s``), or the compute agent it was placed on stopped
heartbeating while the server was still building. Either way the server goes
to ERROR with a fault saying why, and the host's claim is released, so the user
sees what happened and can delete it. Every move is a guarded update on the task
state the sweep saw, so a build that finishes meanwhile is left alone, and
several schedulers may sweep at once.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import structlog

from services.scheduler.settings import SchedulerSettings
from shared.db import hosts, servers
from shared.states import TaskState

log = structlog.get_logger(__name__)

_LOST_IN_SCHEDULING = """
SELECT id, task_state FROM servers
 WHERE vm_state = 'building' AND task_state = 'scheduling' AND host IS NULL
   AND deleted_at IS NULL AND updated_at < now() - make_interval(secs => $1)"""

_ON_DEAD_HOSTS = """
SELECT s.id, s.task_state, s.host FROM servers s JOIN compute_hosts h ON h.host = s.host
 WHERE s.vm_state = 'building' AND s.deleted_at IS NULL
   AND s.task_state IN ('scheduling', 'networking', 'block_device_mapping', 'spawning')
   AND h.last_heartbeat < now() - make_interval(secs => $1)"""


class BuildSweeper:
    def __init__(self, pool: asyncpg.Pool, settings: SchedulerSettings) -> None:
        self._pool = pool
        self._settings = settings

    async def sweep(self) -> int:
        """Fail every orphaned build; return how many were failed."""
        failed = 0
        async with self._pool.acquire() as conn:
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
        return failed

    async def _fail(self, conn: asyncpg.Connection, server_id: UUID, task: str,
                    message: str) -> int:
        async with conn.transaction():
            if not await servers.set_error(conn, server_id, code=500, message=message,
                                           expect=TaskState(task)):
                return 0
            await hosts.release(conn, server_id)
        log.warning("scheduler.build_orphaned", server_id=str(server_id), reason=message)
        return 1
