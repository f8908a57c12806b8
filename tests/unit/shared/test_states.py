"""The server state machine: build order and the status the API shows."""

from __future__ import annotations

import pytest

from shared.states import BUILD_SEQUENCE, TaskState, VmState, api_status, next_build_task


@pytest.mark.parametrize(("vm", "task", "status"), [
    ("building", "scheduling", "BUILD(scheduling)"),
    ("building", "networking", "BUILD(networking)"),
    ("building", "block_device_mapping", "BUILD(block_device_mapping)"),
    ("building", "spawning", "BUILD(spawning)"),
    ("building", None, "BUILD"),
    ("building", "deleting", "BUILD"),
    ("active", None, "ACTIVE"),
    ("active", "deleting", "ACTIVE"),
    ("stopped", None, "SHUTOFF"),
    ("rescued", None, "RESCUE"),
    ("error", None, "ERROR"),
    ("deleted", None, "DELETED"),
])
def test_api_status(vm, task, status):
    assert api_status(vm, task) == status


def test_build_walks_the_spec_sequence_once():
    walked, task = [], TaskState.SCHEDULING
    while task is not None:
        walked.append(task)
        task = next_build_task(task)
    assert tuple(walked) == BUILD_SEQUENCE
    assert [t.value for t in walked] == ["scheduling", "networking", "block_device_mapping",
                                         "spawning"]


@pytest.mark.parametrize("task", [None, TaskState.DELETING])
def test_only_build_tasks_have_a_next_step(task):
    with pytest.raises(ValueError):
        next_build_task(task)


def test_unknown_vm_state_is_refused():
    with pytest.raises(ValueError):
        api_status("exploded", None)
    assert VmState("active") is VmState.ACTIVE


@pytest.mark.parametrize(("vm", "task", "status"), [
    ("active", "rebooting", "REBOOT"),
    ("active", "rebooting_hard", "HARD_REBOOT"),
    ("active", "rebuilding", "REBUILD"),
    ("stopped", "rebuilding", "REBUILD"),
    ("active", "image_snapshot", "ACTIVE"),
    ("active", "powering-off", "ACTIVE"),
    ("stopped", "powering-on", "SHUTOFF"),
    ("active", "rescuing", "ACTIVE"),
    ("rescued", "unrescuing", "RESCUE"),
])
def test_action_tasks_in_status(vm, task, status):
    assert api_status(vm, task) == status
