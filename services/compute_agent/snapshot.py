"""Snapshotting a server on this host into an image (createImage, section 4.4.1.19).

The API has created the image (private to the project, SAVING) and moved the
server to task ``image_snapshot``. Here the driver copies the guest's root disk;
the image then becomes ACTIVE with its size and the server's task is cleared.
If the copy fails, the image goes to ERROR (and out of the lists, as Nova
deletes a failed snapshot) and the server's task is cleared with a fault: the
guest itself is as it was, so the server keeps its vm_state (``SNAPSHOT.failure``
is KEEP). A snapshot whose server was deleted before it started fails its image.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog

from services.compute_agent.runner import Fault, Operation, Run, close_action
from shared.contracts.compute import SnapshotServer
from shared.db import images, servers
from shared.image_store import ImageFile
from shared.states import SNAPSHOT

if TYPE_CHECKING:
    from services.compute_agent.agent import ComputeAgent

log = structlog.get_logger(__name__)


class Snapshot(Operation):
    transition = SNAPSHOT

    async def work(self, run: Run) -> None:
        run.result = await run.agent.driver.snapshot(run.server_id, run.msg.image_id)

    async def complete(self, run: Run, conn: asyncpg.Connection) -> bool:
        msg: SnapshotServer = run.msg
        file: ImageFile = run.result
        kept = await images.finish_snapshot(conn, msg.image_id, file)
        log.info("compute.snapshot_saved", server_id=str(run.server_id),
                 image_id=str(msg.image_id), size=file.size_bytes, location=file.location,
                 image_kept=kept)
        if not kept:  # deleted while it was saved: nobody will ever read the file
            await asyncio.to_thread(run.agent.image_store.remove, file.location)
        return await servers.end_task(conn, run.server_id, SNAPSHOT.task,
                                      request_id=run.action.request_id)

    async def fail(self, run: Run, conn: asyncpg.Connection, fault: Fault) -> bool:
        await images.fail_snapshot(conn, run.msg.image_id)
        return await super().fail(run, conn, fault)

    async def moved_on(self, run: Run) -> None:
        # Deleted while the disk was copied: the image can never be the server's
        # snapshot now (the delete does not know about it).
        async with run.pool.acquire() as conn:
            await images.fail_snapshot(conn, run.msg.image_id)
        await close_action(run)

    async def skipped(self, agent: ComputeAgent, msg: Any, row: asyncpg.Record | None) -> None:
        # Deleted (or moved on) before its snapshot started: the image can never be made.
        async with agent.worker.pool.acquire() as conn:
            await images.fail_snapshot(conn, msg.image_id)
