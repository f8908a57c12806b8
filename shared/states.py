"""The three axes of a server's state and the status the API shows for them.

``vm_state`` is the stable state Nova keeps, ``task_state`` the operation in
flight, ``power_state`` what the hypervisor reports. :func:`api_status` is the
one place that turns them into the ``status`` of the spec (section 2.1.3), where
a build shows its task: ``BUILD(scheduling)``, ``BUILD(networking)``, ...
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


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

