"""Rescue and unrescue a guest on this host (section 4.4.14).

Rescue boots the guest from a rescue image (the server's own image unless the
message names another) with the new root password, its own disk attached, and
the server ends RESCUE; unrescue boots it from its own disk again and the server
ends ACTIVE. The password is never logged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.compute_agent.guest_action import GuestAction, run_action
from shared.contracts.compute import RescueServer, UnrescueServer
from shared.states import TaskState, VmState

if TYPE_CHECKING:
    from services.compute_agent.agent import ComputeAgent

RESCUE = GuestAction("rescue", TaskState.RESCUING, "compute_rescue_instance", VmState.RESCUED)
UNRESCUE = GuestAction("unrescue", TaskState.UNRESCUING, "compute_unrescue_instance",
                       VmState.ACTIVE)


async def rescue_server(agent: ComputeAgent, msg: RescueServer) -> None:
    sid = msg.server_id
    await run_action(agent, sid, RESCUE, lambda: agent.driver.rescue(
        sid, admin_pass=msg.admin_pass, image=msg.rescue_image))


async def unrescue_server(agent: ComputeAgent, msg: UnrescueServer) -> None:
    sid = msg.server_id
    await run_action(agent, sid, UNRESCUE, lambda: agent.driver.unrescue(sid))
