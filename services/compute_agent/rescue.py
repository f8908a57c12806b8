"""Rescue and unrescue a guest on this host (section 4.4.14).

Rescue boots the guest from a rescue image (the server's own image unless the
message names another) with the new root password, its own disk attached, and
the server ends RESCUE; unrescue boots it from its own disk again and the server
ends ACTIVE. The password is never logged.
"""

from __future__ import annotations

from services.compute_agent.runner import Operation, Run
from shared.contracts.compute import RescueServer
from shared.states import RESCUE, UNRESCUE


class Rescue(Operation):
    transition = RESCUE

    async def work(self, run: Run) -> None:
        msg: RescueServer = run.msg
        await run.agent.driver.rescue(run.server_id, admin_pass=msg.admin_pass,
                                      image=msg.rescue_image)


class Unrescue(Operation):
    transition = UNRESCUE

    async def work(self, run: Run) -> None:
        await run.agent.driver.unrescue(run.server_id)
