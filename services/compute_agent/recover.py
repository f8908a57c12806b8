"""At start: the servers this agent left in an action's task when it stopped (Nova's
``_init_instance``).

An agent that dies mid-reboot, mid-stop or mid-rescue leaves its server in
REBOOT, ``powering-off``, ``rescuing``... Before it serves its queue again, the
agent looks at each such server of its host and at what the driver reports for
the guest, and :func:`plan` says what to do:

* the hypervisor has no guest for it (with the fake driver, the guests live in
  the agent process and die with it): ERROR, with a fault naming the action that
  was cut short, and the action's event recorded as an Error;
* reboot, stop, start, unrescue: done again, as Nova retries them. Each is safe
  to repeat and needs nothing but the server id and its task (HARD or SOFT is
  in the task state);
* rescue: finished (RESCUE) if the driver reports the guest rescued. Otherwise
  it is left to its message, which RabbitMQ delivers again (it is acked only
  once handled) and which alone carries the new password; the scheduler's
  action timeout is the backstop if that message is gone;
* rebuild and snapshot are their own modules' business: their messages come
  again too and carry what they need (the new image).

The work goes through the same ``run_action`` as a message, on the action that
set the task (its request id is bound while recovering), so a message delivered
again afterwards finds the task done and nothing to do.
"""

from __future__ import annotations

import asyncio
import enum
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg
import structlog

from services.compute_agent import power, rescue
from services.compute_agent.drivers import GuestInfo
from services.compute_agent.guest_action import GuestAction, power_state
from shared.contracts.compute import (
    RebootServer,
    StartServer,
    StopServer,
    UnrescueServer,
)
from shared.db import actions, servers
from shared.logging import bind_request_id
from shared.states import TaskState

if TYPE_CHECKING:
    from services.compute_agent.agent import ComputeAgent

log = structlog.get_logger(__name__)

ACTIONS: dict[TaskState, GuestAction] = {
    a.task: a for a in (power.REBOOT, power.HARD_REBOOT, power.STOP, power.START,
                        rescue.RESCUE, rescue.UNRESCUE)
}
"""The tasks this module recovers, and their actions."""


class Step(enum.Enum):
    FAIL = "fail"
    """The guest is gone: ERROR with a fault."""
    REDO = "redo"
    """Carry the action out again."""
    FINISH = "finish"
    """The driver shows the action done: record its end state."""
    WAIT = "wait"
    """Leave the task to the action's message, which comes again."""


def plan(task: TaskState, guest: GuestInfo | None) -> Step:
    """What to do about a server found in ``task`` at start, the driver reporting ``guest``."""
    if task not in ACTIONS:
        raise ValueError(f"{task} is not an action this module recovers")
    if guest is None:
        return Step.FAIL
    if task is TaskState.RESCUING:
        return Step.FINISH if guest.rescued else Step.WAIT
    return Step.REDO


async def recover(agent: ComputeAgent) -> int:
    """Deal with every server of this host left in an action's task; return how many."""
    async with agent.worker.pool.acquire() as conn:
        rows = await servers.in_task_on_host(conn, agent.host, list(ACTIONS))
    if not rows:
        return 0
    log.warning("compute.recovering", servers=[str(r["id"]) for r in rows])
    results = await asyncio.gather(*(_recover_one(agent, row) for row in rows),
                                   return_exceptions=True)
    for row, result in zip(rows, results):
        if isinstance(result, BaseException):
            # The scheduler's sweep fails the task if nothing else finishes it.
            log.error("compute.recover_failed", server_id=str(row["id"]),
                      task_state=row["task_state"], error=repr(result))
    return len(rows)


async def _recover_one(agent: ComputeAgent, row: asyncpg.Record) -> None:
    sid = row["id"]
    task = TaskState(row["task_state"])
    action = ACTIONS[task]
    async with agent.worker.pool.acquire() as conn:
        request_id = await servers.open_action_request_id(conn, sid)
    # Events and the end of the action land on the action that set the task.
    bind_request_id(request_id)
    try:
        step = plan(task, await agent.driver.get_info(sid))
        log.info("compute.recover", server_id=str(sid), task_state=task, step=step.value)
        if step is Step.FAIL:
            await _fail(agent, row, action)
        elif step is Step.FINISH:
            async with agent.serialized(sid):
                power_now = await power_state(agent, sid)
                async with agent.worker.pool.acquire() as conn:
                    await servers.complete_task(conn, sid, task, vm_state=action.done,
                                                power_state=power_now)
        elif step is Step.REDO:
            await _redo(agent, task, sid)
    finally:
        bind_request_id(None)


async def _redo(agent: ComputeAgent, task: TaskState, sid: UUID) -> None:
    if task in (TaskState.REBOOTING, TaskState.REBOOTING_HARD):
        await power.reboot_server(agent, RebootServer(
            server_id=sid, hard=task is TaskState.REBOOTING_HARD))
    elif task is TaskState.POWERING_OFF:
        await power.stop_server(agent, StopServer(server_id=sid))
    elif task is TaskState.POWERING_ON:
        await power.start_server(agent, StartServer(server_id=sid))
    elif task is TaskState.UNRESCUING:
        await rescue.unrescue_server(agent, UnrescueServer(server_id=sid))


class _GuestLost(Exception):
    pass


async def _fail(agent: ComputeAgent, row: asyncpg.Record, action: GuestAction) -> None:
    sid = row["id"]
    message = (f"The {action.name} of instance {sid} did not finish: the compute agent on "
               f"host {agent.host} restarted meanwhile and its hypervisor no longer has the "
               "guest.")
    async with agent.serialized(sid):
        try:
            async with actions.event(agent.worker.pool, sid, action.event, host=agent.host):
                raise _GuestLost(message)
        except _GuestLost:
            pass
        async with agent.worker.pool.acquire() as conn:
            await servers.error_task(conn, sid, action.task, code=500, message=message,
                                     details=f"{action.task.value} interrupted; no guest "
                                             f"{sid} on {agent.host}")
    log.error("compute.recover_guest_lost", server_id=str(sid), action=action.name)
