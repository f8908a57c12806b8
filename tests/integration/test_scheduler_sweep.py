"""The sweep that reschedules or fails builds which can no longer finish where they
are (real PostgreSQL)."""

from __future__ import annotations

import asyncpg
import msgspec

from services.scheduler.settings import SchedulerSettings
from services.scheduler.sweep import BuildSweeper
from shared.contracts.scheduler import QUEUE, ScheduleBuild
from shared.db import build_requests, hosts
from shared.db.build_requests import Attempt
from shared.retry import OutageClock
from tests.integration.test_scheduler import (  # noqa: F401  (fixtures)
    SMALL, add_server, age_heartbeat, capacity, db, faults, pool, server_row)

# Shorter than this session's database has been up (a restart excuses silence).
DOWN = SchedulerSettings(service_down_time_s=2)


class _Healthy(OutageClock):
    def healthy_for(self) -> float:
        return 3600.0


async def _place(conn: asyncpg.Connection, host: str, task: str, *,
                 with_request: bool = True, tried: tuple[str, ...] = ()):
    build = await add_server(conn)
    assert await hosts.claim(conn, host, build.server_id, SMALL.ram_mb, SMALL.disk_gb, SMALL.vcpus)
    await conn.execute("UPDATE servers SET host = $2, task_state = $3, request_id = $4 "
                       "WHERE id = $1", build.server_id, host, task, f"req-{build.server_id}")
    if with_request:
        await build_requests.put(conn, build.server_id, ScheduleBuild(build=build))
        for other in tried:
            await build_requests.add_attempt(conn, build.server_id,
                                             Attempt(host=other, reason="stopped responding"))
    return build.server_id


async def _outbox(conn: asyncpg.Connection) -> list[tuple[str, ScheduleBuild, str]]:
    rows = await conn.fetch("SELECT queue, body, request_id FROM outbox ORDER BY id")
    return [(r["queue"], msgspec.json.decode(r["body"], type=ScheduleBuild), r["request_id"])
            for r in rows]


async def test_build_on_a_dead_host_is_scheduled_again_elsewhere(pool, db):
    await hosts.report(db, capacity("dead-1"), starting=True)
    await hosts.report(db, capacity("live-1"), starting=True)
    on_dead = await _place(db, "dead-1", "spawning")
    on_live = await _place(db, "live-1", "networking")
    await age_heartbeat(db, "dead-1", 120)

    swept = await BuildSweeper(pool, DOWN, outages=_Healthy()).sweep()

    assert swept == 1
    row = await server_row(db, on_dead)
    assert (row["vm_state"], row["task_state"], row["host"]) == ("building", "scheduling", None)
    assert await faults(db, on_dead) == []
    assert await hosts.claim_of(db, on_dead) is None
    [(queue, msg, rid)] = await _outbox(db)
    assert (queue, msg.build.server_id, rid) == (QUEUE, on_dead, f"req-{on_dead}")
    assert msg.excluded_hosts == ("dead-1",)
    assert await build_requests.attempts(db, on_dead) == [
        Attempt(host="dead-1", reason="stopped responding (no heartbeat for 2 s)")]
    assert (await server_row(db, on_live))["task_state"] == "networking"
    assert await hosts.claim_of(db, on_live) is not None


async def test_a_build_out_of_tries_ends_in_error_naming_every_host(pool, db):
    await hosts.report(db, capacity("third"), starting=True)
    sid = await _place(db, "third", "spawning", tried=("first", "second"))
    await age_heartbeat(db, "third", 120)

    assert await BuildSweeper(pool, DOWN, outages=_Healthy()).sweep() == 1

    row = await server_row(db, sid)
    assert (row["vm_state"], row["task_state"]) == ("error", None)
    (fault,) = await faults(db, sid)
    assert fault["message"] == (
        "The build did not finish: 3 hosts tried: first (stopped responding); second (stopped "
        "responding); third (stopped responding (no heartbeat for 2 s)).")
    assert await hosts.claim_of(db, sid) is None
    assert await _outbox(db) == []
    assert await build_requests.attempts(db, sid) == []  # the request went with the build


async def test_a_build_without_its_request_ends_in_error(pool, db):
    await hosts.report(db, capacity("dead-2"), starting=True)
    sid = await _place(db, "dead-2", "networking", with_request=False)
    await age_heartbeat(db, "dead-2", 120)
    assert await BuildSweeper(pool, DOWN, outages=_Healthy()).sweep() == 1
    assert (await server_row(db, sid))["vm_state"] == "error"
    assert "dead-2 stopped responding" in (await faults(db, sid))[0]["message"]


async def test_no_host_counts_as_dead_until_the_sweeper_has_been_healthy_a_down_time(pool, db):
    await hosts.report(db, capacity("quiet"), starting=True)
    sid = await _place(db, "quiet", "spawning")
    await age_heartbeat(db, "quiet", 120)
    just_back = OutageClock()  # the sweeper (re)started, or its database came back, just now

    assert await BuildSweeper(pool, DOWN, outages=just_back).sweep() == 0
    assert (await server_row(db, sid))["host"] == "quiet"
    assert await hosts.down_hosts(db, 2, healthy_for_s=just_back.healthy_for()) == []
    assert await hosts.down_hosts(db, 2, healthy_for_s=3600) == ["quiet"]


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


async def test_timeouts_count_only_time_since_the_sweepers_last_outage(pool, db):
    # A build waiting out a long broker outage (its message in the outbox) must not
    # be failed for having waited: the clock restarts at the sweeper's last outage.
    await hosts.report(db, capacity("slow-2"), starting=True)
    stalled = await _place(db, "slow-2", "spawning")
    await db.execute("UPDATE servers SET updated_at = now() - interval '20 minutes' WHERE id = $1",
                     stalled)
    settings = SchedulerSettings(build_timeout_s=600)

    assert await BuildSweeper(pool, settings, outages=OutageClock()).sweep() == 0
    assert (await server_row(db, stalled))["vm_state"] == "building"
    assert await BuildSweeper(pool, settings, outages=_Healthy()).sweep() == 1
    assert (await server_row(db, stalled))["vm_state"] == "error"
