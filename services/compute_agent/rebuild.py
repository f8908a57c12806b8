"""Rebuilding a server on this host (section 4.4.1.18): a new root disk from another
image, with the name, password, metadata and files the user gave, same flavor,
same addresses.

The API has already moved the server to REBUILD (task ``rebuilding``) and
recorded its new image, name and metadata; this ends it ACTIVE (SHUTOFF if it
was stopped, as Nova does: ``REBUILD.stays_stopped``) with the guest's power
state, or in ERROR with a fault. A rebuild delivered again after an agent crash
runs again: the driver re-images whatever disk it finds (or creates the guest if
it has none).
"""

from __future__ import annotations

import asyncpg
import msgspec

from services.compute_agent.drivers import GuestConfig, GuestSpec
from services.compute_agent.drivers.base import hostname_for
from services.compute_agent.runner import Operation, Run
from shared.contracts.common import FlavorSpec, Port
from shared.contracts.compute import RebuildServer
from shared.db import servers, volumes
from shared.states import REBUILD, VmState


class Rebuild(Operation):
    transition = REBUILD

    async def work(self, run: Run) -> None:
        msg: RebuildServer = run.msg
        row = run.row
        # The drive is written again for the new disk, with the new metadata and
        # files; user data and keys stay the guest's (the driver keeps them).
        config = GuestConfig(hostname=hostname_for(msg.name, run.server_id),
                             metadata=msg.metadata, files=msg.files, admin_pass=msg.admin_pass,
                             config_drive=bool(row["config_drive"]))
        # Its volumes stay attached across the rebuild, as in Nova (the API
        # refuses to rebuild a server that boots from a volume).
        async with run.pool.acquire() as conn:
            attached = await volumes.block_devices(conn, run.server_id)
        spec = GuestSpec(
            server_id=run.server_id, name=msg.name,
            flavor=msgspec.convert(row["flavor"], FlavorSpec), image=msg.image,
            ports=tuple(msgspec.convert(row["addresses"], list[Port])), config=config,
            volumes=attached)
        await run.agent.driver.rebuild(spec)
        if self.transition.end_state(VmState(row["vm_state"])) is VmState.STOPPED:
            await run.agent.driver.power_off(run.server_id, timeout_s=0)

    async def complete(self, run: Run, conn: asyncpg.Connection) -> bool:
        end = self.transition.end_state(VmState(run.row["vm_state"]))
        return await servers.finish_rebuild(conn, run.server_id, end, run.power,
                                            request_id=run.action.request_id)
