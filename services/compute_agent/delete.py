"""Deleting a server that lives on this host: guest, ports, claim, then DELETED.

Every step tolerates having been done already, so a delete delivered twice, or
after a failed build that cleaned up half, still ends with the server DELETED.
A step that fails on a transient error (the network service or the database
unreachable) is retried by the RPC layer until its deadline; a permanent
failure puts the server in ERROR with a fault, so the user sees why and can
delete again.
"""

from __future__ import annotations

import asyncpg
import structlog

from services.compute_agent.runner import Fault, Operation, Run
from shared.contracts.network import DeallocatePorts
from shared.db import hosts, images, servers
from shared.states import DELETE, TaskState, VmState

log = structlog.get_logger(__name__)


class Delete(Operation):
    transition = DELETE

    def applies(self, row: asyncpg.Record | None, host: str) -> bool:
        # A server already DELETED still has its guest and ports reaped (a delete
        # delivered again after the first one died between its steps).
        return (row is not None and row["host"] == host
                and (row["task_state"] == TaskState.DELETING
                     or row["vm_state"] == VmState.DELETED))

    async def work(self, run: Run) -> None:
        await run.agent.driver.destroy(run.server_id)
        run.result = await run.network.deallocate_ports(DeallocatePorts(server_id=run.server_id))

    async def complete(self, run: Run, conn: asyncpg.Connection) -> bool:
        await hosts.release(conn, run.server_id)
        # A snapshot cut short by this delete will never be saved.
        await images.fail_saving_of_server(conn, run.server_id)
        deleted = await servers.mark_deleted(conn, run.server_id,
                                             request_id=run.action.request_id)
        log.info("compute.deleted", server_id=str(run.server_id), ports_freed=run.result,
                 was_live=deleted)
        return True  # already DELETED is this operation's end too

    async def fail(self, run: Run, conn: asyncpg.Connection, fault: Fault) -> bool:
        return await servers.set_error(
            conn, run.server_id, code=fault.code,
            message=f"Delete of instance {run.server_id} failed; try deleting it again.",
            details=fault.details or fault.message, expect=TaskState.DELETING,
            request_id=run.action.request_id)
