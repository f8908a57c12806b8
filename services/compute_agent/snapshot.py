"""Snapshotting a server on this host into an image (createImage, section 4.4.1.19).

The API has created the image (private to the project, SAVING) and moved the
server to task ``image_snapshot``. Here the driver copies the guest's root disk;
the image then becomes ACTIVE with its size and the server's task is cleared.
If the copy fails, the image goes to ERROR (and out of the lists, as Nova
deletes a failed snapshot) and the server's task is cleared with a fault: the
guest itself is as it was, so the server keeps its vm_state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from services.compute_agent.drivers import DriverError
from shared.contracts.compute import SnapshotServer
from shared.db import actions, images, servers
from shared.errors import ComputeError
from shared.states import TaskState

if TYPE_CHECKING:
    from services.compute_agent.agent import ComputeAgent

log = structlog.get_logger(__name__)


async def snapshot_server(agent: ComputeAgent, msg: SnapshotServer) -> None:
    sid = msg.server_id
    pool = agent.worker.pool
    async with agent.serialized(sid):
        async with pool.acquire() as conn:
            row = await servers.get(conn, sid)
        if (row is None or row["deleted_at"] is not None or row["host"] != agent.host
                or row["task_state"] != TaskState.IMAGE_SNAPSHOT):
            # Deleted (or moved on) before its snapshot started: the image can never be made.
            log.info("compute.snapshot_skipped", server_id=str(sid), image_id=str(msg.image_id),
                     reason="server is not snapshotting on this host")
            async with pool.acquire() as conn:
                await images.fail_snapshot(conn, msg.image_id)
            return
        log.info("compute.snapshot_started", server_id=str(sid), image_id=str(msg.image_id))
        try:
            async with actions.event(pool, sid, "compute_snapshot_instance", host=agent.host):
                size = await agent.driver.snapshot(sid)
                async with pool.acquire() as conn:
                    async with conn.transaction():
                        saved = await images.finish_snapshot(conn, msg.image_id, size)
                        await servers.end_task(conn, sid, TaskState.IMAGE_SNAPSHOT)
        except Exception as exc:
            await _fail(agent, msg, exc)
            return
    log.info("compute.snapshot_finished", server_id=str(sid), image_id=str(msg.image_id),
             size=size, image_kept=saved)


async def _fail(agent: ComputeAgent, msg: SnapshotServer, exc: Exception) -> None:
    sid = msg.server_id
    if isinstance(exc, ComputeError):
        message, code = exc.message, exc.http_status
    elif isinstance(exc, DriverError):
        message, code = f"Snapshot of instance {sid} failed: {exc}", 500
    else:
        message, code = f"Snapshot of instance {sid} failed: {type(exc).__name__}", 500
    log.error("compute.snapshot_failed", server_id=str(sid), image_id=str(msg.image_id),
              error=str(exc), exc_info=not isinstance(exc, (ComputeError, DriverError)))
    async with agent.worker.pool.acquire() as conn:
        await images.fail_snapshot(conn, msg.image_id)
        await servers.fail_task(conn, sid, TaskState.IMAGE_SNAPSHOT, code=code, message=message,
                                details=f"{type(exc).__name__}: {exc}")
