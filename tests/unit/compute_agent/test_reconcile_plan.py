"""The reconcile loop's pure plan(), from a table of cases (STYLE.md topic 8)."""

from __future__ import annotations

import uuid

import pytest

from services.compute_agent.drivers import GuestInfo
from services.compute_agent.reconcile import (
    DestroyOrphan,
    Known,
    MarkLost,
    MarkStopped,
    NoOp,
    PowerOff,
    RecordPower,
    RetryDelete,
    Skip,
    plan,
)
from shared.states import PowerState, TaskState, VmState

HERE, ELSEWHERE = "cn-here", "cn-other"
A, S, R, E, B, D = (VmState.ACTIVE, VmState.STOPPED, VmState.RESCUED, VmState.ERROR,
                    VmState.BUILDING, VmState.DELETED)
RUN, OFF, CRASH, PAUSE, NONE = (PowerState.RUNNING, PowerState.SHUTDOWN, PowerState.CRASHED,
                                PowerState.PAUSED, PowerState.NOSTATE)


def row(vm: VmState, task: TaskState | None = None, power: PowerState = PowerState.RUNNING,
        host: str | None = HERE, stale_s: float = 0.0) -> Known:
    return Known(vm_state=vm, task_state=task, power_state=int(power), host=host, stale_s=stale_s)


def guest(power: PowerState) -> GuestInfo:
    return GuestInfo(server_id=uuid.uuid4(), power_state=power, ram_mb=512, vcpus=1)


CASES = [
    # (what the database says, what the hypervisor says, busy here) -> step
    ("in sync", row(A), guest(RUN), False, NoOp()),
    ("stopped in sync", row(S, power=OFF), guest(OFF), False, NoOp()),
    ("stopped on its own", row(A), guest(OFF), False,
     MarkStopped("the guest shut down on its own")),
    ("crashed", row(A), guest(CRASH), False, MarkStopped("the guest crashed")),
    ("running though stopped", row(S, power=OFF), guest(RUN), False, PowerOff()),
    ("paused under us: recorded", row(A), guest(PAUSE), False, RecordPower(int(PAUSE))),
    ("power drift only", row(A, power=NONE), guest(RUN), False, RecordPower(int(RUN))),
    ("vanished while active", row(A), None, False,
     MarkLost("its guest is no longer on the hypervisor")),
    ("vanished while stopped", row(S, power=OFF), None, False,
     MarkLost("its guest is no longer on the hypervisor")),
    ("vanished while rescued", row(R), None, False,
     MarkLost("its guest is no longer on the hypervisor")),
    ("error without a guest: recorded", row(E), None, False, RecordPower(int(NONE))),
    ("error without a guest, already recorded", row(E, power=NONE), None, False, NoOp()),
    ("error with its guest running", row(E), guest(RUN), False, NoOp()),
    ("rescued and shut down: only recorded", row(R), guest(OFF), False, RecordPower(int(OFF))),
    ("task in flight", row(A, TaskState.REBOOTING), guest(OFF), False,
     Skip("task rebooting in flight")),
    ("build in flight, no guest yet", row(B, TaskState.SPAWNING, power=NONE), None, False,
     Skip("task spawning in flight")),
    ("operation running here", row(A), guest(OFF), True, Skip("an operation on it runs here")),
    ("recent delete", row(A, TaskState.DELETING, stale_s=5), guest(RUN), False,
     Skip("delete in flight")),
    ("stuck delete", row(A, TaskState.DELETING, stale_s=600), guest(RUN), False, RetryDelete()),
    ("unknown guest", None, guest(RUN), False, DestroyOrphan(free_addresses=True)),
    ("deleted server's guest", row(D, power=NONE), guest(RUN), False,
     DestroyOrphan(free_addresses=True)),
    ("guest of a build gone elsewhere", row(B, TaskState.NETWORKING, host=ELSEWHERE), guest(RUN),
     False, DestroyOrphan(free_addresses=False)),
    ("orphan being handled here", None, guest(RUN), True, Skip("an operation on it runs here")),
    ("neither knows it", None, None, False, NoOp()),
    ("another host's server, no guest here", row(A, host=ELSEWHERE), None, False, NoOp()),
]


@pytest.mark.parametrize(("known", "seen", "busy", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan(known, seen, busy, expected):
    assert plan(known, seen, host=HERE, busy=busy, stuck_delete_s=120) == expected


@pytest.mark.parametrize("task", [t for t in TaskState if t is not TaskState.DELETING])
def test_no_server_with_a_task_in_flight_is_touched(task):
    for seen in (None, guest(RUN), guest(OFF), guest(CRASH)):
        assert isinstance(plan(row(A, task), seen, host=HERE), Skip)
