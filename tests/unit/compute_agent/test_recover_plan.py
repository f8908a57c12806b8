"""What an agent does at start about a server left in an action's task, and the
console's tail: pure functions, tested from tables."""

from __future__ import annotations

import uuid

import pytest

from services.compute_agent.console import tail
from services.compute_agent.drivers import GuestInfo
from services.compute_agent.recover import ACTIONS, Step, plan
from shared.states import PowerState, TaskState

SID = uuid.uuid4()


def _guest(power: PowerState = PowerState.RUNNING, rescued: bool = False) -> GuestInfo:
    return GuestInfo(server_id=SID, power_state=power, ram_mb=512, vcpus=1, rescued=rescued)


@pytest.mark.parametrize(("task", "guest", "step"), [
    # The hypervisor lost the guest: whatever the action, it cannot finish.
    *[(task, None, Step.FAIL) for task in ACTIONS],
    # Safe to repeat with nothing but the server id: done again (Nova retries them).
    (TaskState.REBOOTING, _guest(PowerState.SHUTDOWN), Step.REDO),
    (TaskState.REBOOTING, _guest(), Step.REDO),
    (TaskState.REBOOTING_HARD, _guest(PowerState.SHUTDOWN), Step.REDO),
    (TaskState.POWERING_OFF, _guest(), Step.REDO),
    (TaskState.POWERING_OFF, _guest(PowerState.SHUTDOWN), Step.REDO),
    (TaskState.POWERING_ON, _guest(PowerState.SHUTDOWN), Step.REDO),
    (TaskState.UNRESCUING, _guest(rescued=True), Step.REDO),
    (TaskState.UNRESCUING, _guest(rescued=False), Step.REDO),
    # Rescue needs the password only its message has.
    (TaskState.RESCUING, _guest(rescued=True), Step.FINISH),
    (TaskState.RESCUING, _guest(rescued=False), Step.WAIT),
    (TaskState.RESCUING, _guest(PowerState.SHUTDOWN), Step.WAIT),
])
def test_plan(task, guest, step):
    assert plan(task, guest) is step


@pytest.mark.parametrize("task", [TaskState.REBUILDING, TaskState.IMAGE_SNAPSHOT,
                                  TaskState.DELETING, TaskState.SPAWNING])
def test_other_tasks_are_not_this_modules(task):
    assert task not in ACTIONS
    with pytest.raises(ValueError):
        plan(task, _guest())


@pytest.mark.parametrize(("length", "expected"), [
    (None, "a\nb\nc\n"),
    (0, ""),
    (1, "c\n"),
    (2, "b\nc\n"),
    (3, "a\nb\nc\n"),
    (50, "a\nb\nc\n"),
])
def test_tail(length, expected):
    assert tail("a\nb\nc\n", length) == expected


def test_tail_keeps_a_last_line_without_newline():
    assert tail("a\nb", 1) == "b"
