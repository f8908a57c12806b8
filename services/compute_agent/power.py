"""Reboot (SOFT and HARD), stop and start a guest on this host (sections 4.4.1.17, 4.4.25).

Each is a user action the API began (``shared.states``: REBOOT, HARD_REBOOT,
STOP, START); the runner guards, records and ends it; the driver does the work.
The server ends ACTIVE (reboot, start) or SHUTOFF (stop) with the power state
the driver reports, or in ERROR with a fault.
"""

from __future__ import annotations

from services.compute_agent.runner import Operation, Run
from shared.contracts.compute import RebootServer
from shared.states import HARD_REBOOT, REBOOT, START, STOP


class Reboot(Operation):
    transition = REBOOT

    async def work(self, run: Run) -> None:
        await run.agent.driver.reboot(run.server_id, hard=False)


class HardReboot(Operation):
    transition = HARD_REBOOT

    async def work(self, run: Run) -> None:
        await run.agent.driver.reboot(run.server_id, hard=True)


class Stop(Operation):
    transition = STOP

    async def work(self, run: Run) -> None:
        await run.agent.driver.power_off(run.server_id,
                                         timeout_s=run.agent.settings.compute.shutdown_timeout_s)


class Start(Operation):
    transition = START

    async def work(self, run: Run) -> None:
        await run.agent.driver.power_on(run.server_id)


def reboot_operation(msg: RebootServer) -> Operation:
    """SOFT and HARD reboots run as different tasks (REBOOT, HARD_REBOOT)."""
    return HardReboot() if msg.hard else Reboot()
