"""The three axes of a server's state, the one table of what each operation moves
them through, and the status the API shows for them.

``vm_state`` is the stable state Nova keeps, ``task_state`` the operation in
flight, ``power_state`` what the hypervisor reports. :func:`api_status` is the
one place that turns them into the ``status`` of the spec (section 2.1.3), where
a build shows its task: ``BUILD(scheduling)``, ``BUILD(networking)``, ...

:data:`TRANSITIONS` is the one place that says, for every operation on a server,
from which vm_states it may start, which task it runs as, where it ends and
what a failure leaves. The API reads it to begin a task (409 otherwise), the
compute agent to end one, the scheduler's sweep to name one it fails, and the
agent's reconcile loop to start one itself.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import NamedTuple


class VmState(StrEnum):
    BUILDING = "building"
    ACTIVE = "active"
    STOPPED = "stopped"
    RESCUED = "rescued"
    ERROR = "error"
    DELETED = "deleted"


class TaskState(StrEnum):
    SCHEDULING = "scheduling"
    NETWORKING = "networking"
    BLOCK_DEVICE_MAPPING = "block_device_mapping"
    SPAWNING = "spawning"
    DELETING = "deleting"
    # Actions on a built server (section 4.4.1.17-19, 4.4.14, 4.4.25).
    REBOOTING = "rebooting"
    REBOOTING_HARD = "rebooting_hard"
    REBUILDING = "rebuilding"
    IMAGE_SNAPSHOT = "image_snapshot"
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    RESCUING = "rescuing"
    UNRESCUING = "unrescuing"


class PowerState(IntEnum):
    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7


# The build walks these task states in order (spec section 2.1.3).
BUILD_SEQUENCE: tuple[TaskState, ...] = (
    TaskState.SCHEDULING, TaskState.NETWORKING,
    TaskState.BLOCK_DEVICE_MAPPING, TaskState.SPAWNING,
)

# The task state each build step moves to (None: the build is done).
_NEXT_BUILD_TASK: dict[TaskState | None, TaskState | None] = {
    TaskState.SCHEDULING: TaskState.NETWORKING,
    TaskState.NETWORKING: TaskState.BLOCK_DEVICE_MAPPING,
    TaskState.BLOCK_DEVICE_MAPPING: TaskState.SPAWNING,
    TaskState.SPAWNING: None,
}


def next_build_task(task: TaskState | None) -> TaskState | None:
    """The task state a build moves to after ``task`` (None: the build is done)."""
    if task not in _NEXT_BUILD_TASK:
        raise ValueError(f"{task!r} is not a build task state")
    return _NEXT_BUILD_TASK[task]


_STATUS = {
    VmState.ACTIVE: "ACTIVE",
    VmState.STOPPED: "SHUTOFF",
    VmState.RESCUED: "RESCUE",
    VmState.ERROR: "ERROR",
    VmState.DELETED: "DELETED",
}


# Tasks that show in the status instead of the vm_state's own (Nova's _STATE_MAP).
_TASK_STATUS = {
    TaskState.REBOOTING: "REBOOT",
    TaskState.REBOOTING_HARD: "HARD_REBOOT",
    TaskState.REBUILDING: "REBUILD",
}


def api_status(vm_state: VmState | str, task_state: TaskState | str | None) -> str:
    """The ``status`` string the API shows for a server."""
    vm = VmState(vm_state)
    task = TaskState(task_state) if task_state else None
    if vm is VmState.BUILDING:
        return f"BUILD({task.value})" if task and task is not TaskState.DELETING else "BUILD"
    if task in _TASK_STATUS and vm in (VmState.ACTIVE, VmState.STOPPED, VmState.ERROR):
        return _TASK_STATUS[task]
    return _STATUS[vm]



class Failure(StrEnum):
    """What a failed operation leaves of the server (besides a fault saying why)."""

    ERROR = "error"
    """vm_state ERROR: the guest's state is unknown (Nova's outcome of a failed
    reboot, rescue, rebuild, build or delete)."""
    KEEP = "keep"
    """vm_state as it was, task cleared: the guest is untouched (a failed snapshot)."""


class Transition(NamedTuple):
    """One operation on a server, as every service sees it."""

    name: str
    """As users know it, in faults and logs: ``"reboot"``, ``"stop"``..."""
    action: str
    """The instance action the API records (section 4.4.20): ``"reboot"``, ``"createImage"``."""
    task: TaskState
    """The task state it runs as (the first one, for a build)."""
    allowed_from: tuple[VmState, ...]
    """The vm_states it may start from, with no other task in flight."""
    done: VmState | None
    """The vm_state once it worked (None: unchanged)."""
    failure: Failure
    """What a failure leaves."""
    event: str
    """The instance action event the compute agent records (Nova's names)."""
    stays_stopped: bool = False
    """It ends STOPPED again when it began STOPPED (rebuild, as in Nova)."""
    label: str = ""
    """How faults name it when the name alone would not say which request it was
    (``stop (os-stop)``); the name when empty."""

    @property
    def called(self) -> str:
        """What a fault calls it."""
        return self.label or self.name

    def end_state(self, began: VmState) -> VmState:
        """The vm_state it ends in, having begun in ``began``."""
        if self.stays_stopped and began is VmState.STOPPED:
            return VmState.STOPPED
        return self.done if self.done is not None else began


_A, _S, _E, _R = VmState.ACTIVE, VmState.STOPPED, VmState.ERROR, VmState.RESCUED

# Allowed-from states follow Nova's check_instance_state. Soft reboot from ACTIVE
# only; hard reboot also from SHUTOFF (it boots the guest) and ERROR (a way out of a
# failed action). Stop from ACTIVE and ERROR (Nova also allowed RESCUE; here a
# rescued server is unrescued first, so start always boots its own disk).
BUILD = Transition("build", "create", TaskState.SCHEDULING, (VmState.BUILDING,), _A,
                   Failure.ERROR, "compute_build_and_run_instance")
DELETE = Transition("delete", "delete", TaskState.DELETING,
                    (VmState.BUILDING, _A, _S, _R, _E), VmState.DELETED, Failure.ERROR,
                    "compute_terminate_instance")
REBOOT = Transition("reboot", "reboot", TaskState.REBOOTING, (_A,), _A, Failure.ERROR,
                    "compute_reboot_instance")
HARD_REBOOT = Transition("hard reboot", "reboot", TaskState.REBOOTING_HARD, (_A, _S, _E), _A,
                         Failure.ERROR, "compute_reboot_instance")
STOP = Transition("stop", "stop", TaskState.POWERING_OFF, (_A, _E), _S, Failure.ERROR,
                  "compute_stop_instance", label="stop (os-stop)")
START = Transition("start", "start", TaskState.POWERING_ON, (_S,), _A, Failure.ERROR,
                   "compute_start_instance", label="start (os-start)")
RESCUE = Transition("rescue", "rescue", TaskState.RESCUING, (_A, _S), _R, Failure.ERROR,
                    "compute_rescue_instance")
UNRESCUE = Transition("unrescue", "unrescue", TaskState.UNRESCUING, (_R,), _A, Failure.ERROR,
                      "compute_unrescue_instance")
REBUILD = Transition("rebuild", "rebuild", TaskState.REBUILDING, (_A, _S, _E), _A, Failure.ERROR,
                     "compute_rebuild_instance", stays_stopped=True)
SNAPSHOT = Transition("snapshot", "createImage", TaskState.IMAGE_SNAPSHOT, (_A, _S), None,
                      Failure.KEEP, "compute_snapshot_instance", label="snapshot (createImage)")

TRANSITIONS: tuple[Transition, ...] = (BUILD, DELETE, REBOOT, HARD_REBOOT, STOP, START, RESCUE,
                                       UNRESCUE, REBUILD, SNAPSHOT)

ACTIONS_BY_TASK: dict[TaskState, Transition] = {
    t.task: t for t in (REBOOT, HARD_REBOOT, STOP, START, RESCUE, UNRESCUE, REBUILD, SNAPSHOT)
}
"""The user actions on a built server, by the task they run as (not build or delete)."""
