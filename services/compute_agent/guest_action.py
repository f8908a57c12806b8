"""Carrying out one user action on a guest: reboot, stop, start, rescue, unrescue.

The API has moved the server into the action's task state (``begin_task``) and
cast the message here. :func:`run_action` then, under the server's lock:

1. checks the server still is in that task on this host; a message delivered
   twice, or one whose server was deleted or failed by the sweep meanwhile,
   finds nothing to do;
2. has the driver do the work, recorded as the action's event
   (``compute_reboot_instance``, ...);
3. records the end with one guarded update: the vm_state the action leads to,
   the power state the driver now reports, the task cleared, the instance
   action finished; or, if the driver failed, ERROR with a fault naming the
   action and why (as Nova does for a failed reboot or rescue).

A delete that arrives meanwhile waits for the lock; it has already moved the
task to ``deleting``, so the guarded update finds another task and leaves the
server to the delete.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NamedTuple
from uuid import UUID

import structlog

from services.compute_agent.drivers import DriverError
from shared.db import actions, servers
from shared.errors import ComputeError
from shared.states import TaskState, VmState

if TYPE_CHECKING:
    from services.compute_agent.agent import ComputeAgent

log = structlog.get_logger(__name__)


class GuestAction(NamedTuple):
    """What one action is called and where it leads."""

    name: str
    """As users know it, for faults and logs: ``"reboot"``, ``"stop"``..."""
    task: TaskState
    """The task state the API set for it."""
    event: str
    """The instance action event the agent records (Nova's name)."""
    done: VmState
    """The vm_state once it worked."""


async def power_state(agent: ComputeAgent, server_id: UUID) -> int:
    """What the driver reports for the guest (NOSTATE, 0, if it has none)."""
    info = await agent.driver.get_info(server_id)
    return int(info.power_state) if info is not None else 0


async def run_action(agent: ComputeAgent, server_id: UUID, action: GuestAction,
                     work: Callable[[], Awaitable[None]]) -> bool:
    """Do ``work`` for ``action`` if the server is in its task here; True if it ran."""
    pool = agent.worker.pool
    async with agent.serialized(server_id):
        async with pool.acquire() as conn:
            row = await servers.get(conn, server_id)
        if (row is None or row["deleted_at"] is not None or row["host"] != agent.host
                or row["task_state"] != action.task):
            log.info("compute.action_skipped", server_id=str(server_id), action=action.name,
                     task_state=row["task_state"] if row else None,
                     reason="server is not in the action's task on this host")
            return False
        log.info("compute.action_started", server_id=str(server_id), action=action.name)
        try:
            async with actions.event(pool, server_id, action.event, host=agent.host):
                await work()
        except Exception as exc:
            await fail_action(agent, server_id, action, exc)
            return True
        power = await power_state(agent, server_id)
        async with pool.acquire() as conn:
            done = await servers.complete_task(conn, server_id, action.task,
                                               vm_state=action.done, power_state=power)
            if not done:
                # Deleted (or failed by the sweep) while the driver worked: whoever
                # moved the task owns the server now; only our action is left open.
                await actions.finish_current(conn, server_id)
    log.info("compute.action_finished" if done else "compute.action_superseded",
             server_id=str(server_id), action=action.name, power_state=power)
    return True


async def fail_action(agent: ComputeAgent, server_id: UUID, action: GuestAction,
                      exc: Exception) -> None:
    """ERROR with a fault saying which action failed and why."""
    if isinstance(exc, ComputeError):
        message, code = exc.message, exc.http_status
    elif isinstance(exc, DriverError):
        message, code = f"The {action.name} of instance {server_id} failed: {exc}", 500
    else:
        message, code = (f"The {action.name} of instance {server_id} failed: "
                         f"{type(exc).__name__}"), 500
    log.error("compute.action_failed", server_id=str(server_id), action=action.name,
              error=str(exc), exc_info=not isinstance(exc, (ComputeError, DriverError)))
    async with agent.worker.pool.acquire() as conn:
        if not await servers.error_task(conn, server_id, action.task, code=code, message=message,
                                        details=f"{type(exc).__name__}: {exc}"):
            # Deleted meanwhile (the guest went with it, hence the failure): the
            # delete owns the server; only our action is left to close.
            await actions.finish_current(conn, server_id, message)
