"""The volume service's sweep (real PostgreSQL): stuck volumes and snapshots end as the
status table says, attaches and detaches on a dead compute host are released at
once, nothing is judged right after an outage, and the running service sweeps."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest

from services.volume.backends import BackendContext, make_backend
from services.volume.settings import Settings, VolumeSettings
from services.volume.sweep import VolumeSweeper
from shared.config import AmqpSettings, DatabaseSettings
from shared.db import hosts, volumes
from shared.retry import OutageClock
from shared.volume_states import DETACH
from shared.volume_store import VolumeStore, VolumeStoreSettings
from tests.e2e.client import eventually
from tests.integration.test_scheduler import (  # noqa: F401  (fixtures)
    add_server, age_heartbeat, capacity, db, pool)
from tests.integration.test_volume_service import run_worker
from tests.integration.volume_rows import PROJECT, add_snapshot, add_volume

SETTINGS = VolumeSettings(transient_timeout_s=600, service_down_time_s=1)


class _Healthy(OutageClock):
    def healthy_for(self) -> float:
        return 3600.0


def sweeper(pool: asyncpg.Pool, **kwargs) -> VolumeSweeper:
    return VolumeSweeper(pool, SETTINGS, outages=_Healthy(), **kwargs)


async def age(conn: asyncpg.Connection, table: str, row_id: UUID, minutes: int = 20) -> None:
    query = {"volumes": "UPDATE volumes SET updated_at = now() - make_interval(mins => $2) "
                        "WHERE id = $1",
             "volume_snapshots": "UPDATE volume_snapshots SET updated_at = now() - "
                                 "make_interval(mins => $2) WHERE id = $1"}[table]
    await conn.execute(query, row_id, minutes)


async def on_server(conn: asyncpg.Connection, host: str) -> UUID:
    server = (await add_server(conn)).server_id
    await conn.execute("UPDATE servers SET host = $2, vm_state = 'active', task_state = NULL "
                       "WHERE id = $1", server, host)
    return server


async def attaching(conn: asyncpg.Connection, server: UUID) -> UUID:
    vid = await add_volume(conn, status="available")
    assert await volumes.begin_attach(conn, vid, PROJECT, server, "/dev/vdb", request_id="r-a")
    return vid


async def detaching(conn: asyncpg.Connection, server: UUID) -> UUID:
    vid = await attaching(conn, server)
    assert await volumes.end_attach(conn, vid, server)
    assert await volumes.begin(conn, vid, PROJECT, DETACH, request_id="r-d")
    return vid


async def state(conn: asyncpg.Connection, vid: UUID) -> tuple:
    row = await volumes.get(conn, vid)
    return row["status"], row["server_id"], row["error_reason"]


async def test_stuck_volumes_end_as_the_status_table_says(pool, db):
    server = await on_server(db, "live-host")
    await hosts.report(db, capacity("live-host"), starting=True)
    creating = await add_volume(db, request_id="r-c")
    fresh = await add_volume(db)
    attach, detach = await attaching(db, server), await detaching(db, server)
    deleting = await add_volume(db, status="deleting")
    for vid in (creating, attach, detach, deleting):
        await age(db, "volumes", vid)

    assert await sweeper(pool).sweep() == 4

    def late(op: str, vid: UUID) -> str:
        return f"The {op} of volume {vid} did not complete within 600 s."
    assert await state(db, creating) == ("error", None, late("create", creating))
    assert await state(db, attach) == ("available", None, late("attach", attach))
    assert await state(db, detach) == ("in-use", server, late("detach", detach))
    assert await state(db, deleting) == ("error_deleting", None, late("delete", deleting))
    assert await state(db, fresh) == ("creating", None, None)
    assert await sweeper(pool).sweep() == 0


async def test_stuck_snapshots_end_in_error(pool, db):
    volume = await add_volume(db, status="available")
    creating, deleting = await add_snapshot(db, volume), await add_snapshot(db, volume)
    await db.execute("UPDATE volume_snapshots SET status = 'deleting' WHERE id = $1", deleting)
    fresh = await add_snapshot(db, volume)
    for sid in (creating, deleting):
        await age(db, "volume_snapshots", sid)

    assert await sweeper(pool).sweep() == 2

    for sid, status, what in ((creating, "error", "creation"),
                              (deleting, "error_deleting", "delete")):
        row = await volumes.get_snapshot(db, sid)
        assert (row["status"], row["error_reason"]) == (
            status, f"The {what} of snapshot {sid} of volume {volume} did not complete "
                    f"within 600 s.")
    assert (await volumes.get_snapshot(db, fresh))["status"] == "creating"


async def _database_up_for(db: asyncpg.Connection, seconds: float) -> None:
    """A host counts as down only once the database has been up a down time."""
    async def up() -> bool:
        return await db.fetchval("SELECT pg_postmaster_start_time() < now() - "
                                 "make_interval(secs => $1)", seconds)
    await eventually(up, timeout=10)


async def test_attach_and_detach_on_a_dead_host_are_released_at_once(pool, db):
    await _database_up_for(db, SETTINGS.service_down_time_s)
    await hosts.report(db, capacity("dead-host"), starting=True)
    await hosts.report(db, capacity("live-host"), starting=True)
    await age_heartbeat(db, "dead-host", 120)
    stranded = await on_server(db, "dead-host")
    attach, detach = await attaching(db, stranded), await detaching(db, stranded)
    elsewhere = await attaching(db, await on_server(db, "live-host"))

    assert await sweeper(pool).sweep() == 2

    def lost(op: str, vid: UUID) -> str:
        return (f"The {op} of volume {vid} to server {stranded} did not complete: compute "
                f"host dead-host stopped responding (no heartbeat for 1 s).")
    # The attach was never confirmed; the detach was not either: the guest may hold it.
    assert await state(db, attach) == ("available", None, lost("attach", attach))
    assert await state(db, detach) == ("in-use", stranded, lost("detach", detach))
    assert (await state(db, elsewhere))[0] == "attaching"


async def test_nothing_is_judged_right_after_an_outage(pool, db):
    await _database_up_for(db, SETTINGS.service_down_time_s)
    await hosts.report(db, capacity("quiet-host"), starting=True)
    await age_heartbeat(db, "quiet-host", 120)
    attach = await attaching(db, await on_server(db, "quiet-host"))
    creating = await add_volume(db)
    await age(db, "volumes", creating)
    just_back = OutageClock()  # the service (re)started, or its database came back, now

    assert await VolumeSweeper(pool, SETTINGS, outages=just_back).sweep() == 0
    assert (await state(db, attach))[0] == "attaching"
    assert (await state(db, creating))[0] == "creating"


async def test_the_sweep_removes_what_dead_creates_left(pool, tmp_path):
    store = VolumeStore(str(tmp_path))
    backend = make_backend("file", BackendContext(store=store, tool_timeout_s=60))
    old, fresh = tmp_path / f"volume-{uuid.uuid4()}.qcow2.0123456789ab.part", tmp_path / "x.part"
    old.write_bytes(b"")
    fresh.write_bytes(b"")
    long_ago = time.time() - 3600
    os.utime(old, (long_ago, long_ago))

    await sweeper(pool, backend=backend).sweep()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.part"]


@pytest.fixture
def quick(db_url: str, amqp_url: str, tmp_path: Path) -> Settings:
    return Settings(database=DatabaseSettings(url=db_url), amqp=AmqpSettings(url=amqp_url),
                    volume=VolumeSettings(transient_timeout_s=1, sweep_interval_s=0.2),
                    volumes=VolumeStoreSettings(dir=str(tmp_path / "volumes")))


async def test_the_running_service_sweeps(quick, db):
    stuck = await add_volume(db)
    await age(db, "volumes", stuck)
    async with run_worker(quick):
        async def failed() -> bool:
            return (await state(db, stuck))[0] == "error"
        await eventually(failed, timeout=15)
    assert (await state(db, stuck))[2] == f"The create of volume {stuck} did not complete within 1 s."
