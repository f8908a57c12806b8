"""The sweep that fails builds which can no longer finish (real PostgreSQL)."""

from __future__ import annotations

import asyncpg

from services.scheduler.settings import SchedulerSettings
from services.scheduler.sweep import BuildSweeper
from shared.db import hosts
from tests.integration.test_scheduler import (  # noqa: F401  (fixtures)
    SMALL, add_server, age_heartbeat, capacity, db, faults, pool, server_row)


async def _place(conn: asyncpg.Connection, host: str, task: str):
    build = await add_server(conn)
    assert await hosts.claim(conn, host, build.server_id, SMALL.ram_mb, SMALL.disk_gb, SMALL.vcpus)
    await conn.execute("UPDATE servers SET host = $2, task_state = $3 WHERE id = $1",
                       build.server_id, host, task)
    return build.server_id


async def test_build_on_a_dead_host_goes_to_error_and_frees_the_claim(pool, db):
    await hosts.report(db, capacity("dead-1"), starting=True)
    await hosts.report(db, capacity("live-1"), starting=True)
    on_dead = await _place(db, "dead-1", "spawning")
    on_live = await _place(db, "live-1", "networking")
    await age_heartbeat(db, "dead-1", 120)

    swept = await BuildSweeper(pool, SchedulerSettings(service_down_time_s=30)).sweep()

    assert swept == 1
    row = await server_row(db, on_dead)
    assert row["vm_state"] == "error" and row["task_state"] is None
    (fault,) = await faults(db, on_dead)
    assert "dead-1 stopped responding" in fault["message"]
    assert await hosts.claim_of(db, on_dead) is None
    assert (await server_row(db, on_live))["task_state"] == "networking"
    assert await hosts.claim_of(db, on_live) is not None


async def test_build_never_scheduled_times_out(pool, db):
    fresh = (await add_server(db)).server_id
    lost = (await add_server(db)).server_id
    await db.execute("UPDATE servers SET updated_at = now() - interval '10 minutes' WHERE id = $1",
                     lost)

    swept = await BuildSweeper(pool, SchedulerSettings(scheduling_timeout_s=300)).sweep()

    assert swept == 1
    assert (await server_row(db, lost))["vm_state"] == "error"
    assert "timed out while scheduling" in (await faults(db, lost))[0]["message"]
    assert (await server_row(db, fresh))["task_state"] == "scheduling"
    # A second sweep finds nothing more to do.
    assert await BuildSweeper(pool, SchedulerSettings(scheduling_timeout_s=300)).sweep() == 0


async def test_build_that_stopped_moving_times_out(pool, db):
    await hosts.report(db, capacity("slow-1"), starting=True)
    stalled = await _place(db, "slow-1", "spawning")
    moving = await _place(db, "slow-1", "networking")
    await db.execute("UPDATE servers SET updated_at = now() - interval '20 minutes' WHERE id = $1",
                     stalled)

    swept = await BuildSweeper(pool, SchedulerSettings(build_timeout_s=600)).sweep()

    assert swept == 1
    assert (await server_row(db, stalled))["vm_state"] == "error"
    assert "did not finish within 600 s" in (await faults(db, stalled))[0]["message"]
    assert await hosts.claim_of(db, stalled) is None
    assert (await server_row(db, moving))["vm_state"] == "building"
