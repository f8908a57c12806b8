"""The scheduler's sweep fails actions that can no longer finish (real PostgreSQL)."""

from __future__ import annotations

import asyncpg
import pytest

from services.scheduler.settings import SchedulerSettings
from services.scheduler.sweep import BuildSweeper, action_label
from shared.db import actions, hosts
from shared.states import ACTIONS_BY_TASK, TaskState
from tests.integration.test_scheduler import (  # noqa: F401  (fixtures)
    SMALL, add_server, age_heartbeat, capacity, db, faults, pool, server_row)


async def _acting(conn: asyncpg.Connection, host: str, task: TaskState, *,
                  vm_state: str = "active", age_s: int = 0):
    """A built server of ``host`` in ``task``, begun ``age_s`` seconds ago, with its action."""
    build = await add_server(conn, vm_state=vm_state, task_state=task.value)
    sid = build.server_id
    assert await hosts.claim(conn, host, sid, SMALL.ram_mb, SMALL.disk_gb, SMALL.vcpus)
    await conn.execute("UPDATE servers SET host = $2, power_state = 1, "
                       "updated_at = now() - make_interval(secs => $3) WHERE id = $1",
                       sid, host, age_s)
    await actions.start_action(conn, server_id=sid, project_id="demo", user_id="u-demo",
                               action=task.value, request_id=f"req-{sid}")
    return sid


async def _action(conn: asyncpg.Connection, sid) -> asyncpg.Record:
    return await actions.get(conn, sid, f"req-{sid}")


@pytest.mark.parametrize("task", list(ACTIONS_BY_TASK))
async def test_an_action_stuck_past_the_timeout_goes_to_error(pool, db, task):
    await hosts.report(db, capacity("slow-act"), starting=True)
    stuck = await _acting(db, "slow-act", task, age_s=700)
    recent = await _acting(db, "slow-act", task, age_s=10)

    swept = await BuildSweeper(pool, SchedulerSettings(action_timeout_s=600)).sweep()

    assert swept == 1
    row = await server_row(db, stuck)
    assert (row["vm_state"], row["task_state"]) == ("error", None)
    (fault,) = await faults(db, stuck)
    assert fault["message"] == (f"The {action_label(task)} of instance {stuck} did not finish "
                                "within 600 s.")
    assert fault["code"] == 500
    action = await _action(db, stuck)
    assert action["finish_time"] is not None and action["message"] == fault["message"]
    # The server still lives on its host: only a delete frees the claim.
    assert await hosts.claim_of(db, stuck) is not None
    assert (await server_row(db, recent))["task_state"] == task.value
    assert (await _action(db, recent))["finish_time"] is None
    assert await BuildSweeper(pool, SchedulerSettings(action_timeout_s=600)).sweep() == 0


async def test_an_action_on_a_dead_host_goes_to_error(pool, db):
    await hosts.report(db, capacity("dead-act"), starting=True)
    await hosts.report(db, capacity("live-act"), starting=True)
    on_dead = await _acting(db, "dead-act", TaskState.REBOOTING_HARD, age_s=5)
    stopped_on_dead = await _acting(db, "dead-act", TaskState.POWERING_ON, vm_state="stopped")
    on_live = await _acting(db, "live-act", TaskState.REBOOTING)
    idle_on_dead = (await add_server(db, vm_state="active", task_state=None)).server_id
    await db.execute("UPDATE servers SET host = 'dead-act' WHERE id = $1", idle_on_dead)
    await age_heartbeat(db, "dead-act", 120)

    # A down time shorter than this session's database has been up: the host's
    # silence is not excused by a database restart (see shared.db.hosts).
    swept = await BuildSweeper(pool, SchedulerSettings(service_down_time_s=2)).sweep()

    assert swept == 2
    for sid, name in ((on_dead, "hard reboot"), (stopped_on_dead, "start (os-start)")):
        row = await server_row(db, sid)
        assert (row["vm_state"], row["task_state"]) == ("error", None)
        (fault,) = await faults(db, sid)
        assert fault["message"] == (f"The {name} of instance {sid} did not finish: compute "
                                    "host dead-act stopped responding (no heartbeat for 2 s).")
        assert (await _action(db, sid))["finish_time"] is not None
    assert (await server_row(db, on_live))["task_state"] == "rebooting"
    # A server with no action in flight stays as it is: the host may come back.
    assert (await server_row(db, idle_on_dead))["vm_state"] == "active"


async def test_a_delete_is_not_an_action_to_fail(pool, db):
    await hosts.report(db, capacity("del-act"), starting=True)
    deleting = await _acting(db, "del-act", TaskState.DELETING, age_s=7200)
    swept = await BuildSweeper(pool, SchedulerSettings(action_timeout_s=600)).sweep()
    assert swept == 0
    assert (await server_row(db, deleting))["task_state"] == "deleting"
