"""Reboot (SOFT and HARD), stop and start a guest on this host (sections 4.4.1.17, 4.4.25).

Each is a :class:`~services.compute_agent.guest_action.GuestAction`: the API set
the task, the driver does the work, the server ends ACTIVE (reboot, start) or
SHUTOFF (stop) with the power state the driver reports, or in ERROR with a fault.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.compute_agent.guest_action import GuestAction, run_action
from shared.contracts.compute import RebootServer, StartServer, StopServer
from shared.states import TaskState, VmState

if TYPE_CHECKING:
    from services.compute_agent.agent import ComputeAgent

REBOOT = GuestAction("reboot", TaskState.REBOOTING, "compute_reboot_instance", VmState.ACTIVE)
HARD_REBOOT = GuestAction("hard reboot", TaskState.REBOOTING_HARD, "compute_reboot_instance",
                          VmState.ACTIVE)
STOP = GuestAction("stop", TaskState.POWERING_OFF, "compute_stop_instance", VmState.STOPPED)
START = GuestAction("start", TaskState.POWERING_ON, "compute_start_instance", VmState.ACTIVE)


async def reboot_server(agent: ComputeAgent, msg: RebootServer) -> None:
    sid = msg.server_id
    await run_action(agent, sid, HARD_REBOOT if msg.hard else REBOOT,
                     lambda: agent.driver.reboot(sid, hard=msg.hard))


async def stop_server(agent: ComputeAgent, msg: StopServer) -> None:
    sid = msg.server_id
    await run_action(agent, sid, STOP, lambda: agent.driver.power_off(sid))


async def start_server(agent: ComputeAgent, msg: StartServer) -> None:
    sid = msg.server_id
    await run_action(agent, sid, START, lambda: agent.driver.power_on(sid))
