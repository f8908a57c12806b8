"""Scheduler hints (section 4.4.10) through the real handler on PostgreSQL and RabbitMQ.

The servers a hint names are real rows; the scheduler reads where they live
in one query, scoped to the build's project, and its filters and weighers act
on that. Builds go out on the real broker, read back with ``drain``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from uuid import UUID

import aio_pika
import asyncpg
import msgspec
import pytest

from services.scheduler.build import BuildScheduler
from services.scheduler.host_state import locate_servers
from services.scheduler.settings import SchedulerSettings
from shared.config import DatabaseSettings
from shared.contracts.scheduler import ScheduleBuild
from shared.db import actions, hosts
from shared.db.pool import create_pool
from shared.rpc.server import CallContext
from shared.rpc import RpcClient, connect
from tests.integration.test_scheduler import (
    IMAGE,
    SMALL,
    add_server,
    capacity,
    drain,
    faults,
    server_row,
)


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(DatabaseSettings(url=db_url, pool_min=1, pool_max=10))
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def db(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as conn:  # the pool's connections know the JSON codecs
        yield conn


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    connection = await connect(amqp_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def scheduler(pool: asyncpg.Pool, broker) -> AsyncIterator[BuildScheduler]:
    rpc = RpcClient(broker, timeout=10)
    await rpc.start()
    try:
        yield BuildScheduler(pool, rpc, SchedulerSettings())
    finally:
        await rpc.close()


async def existing(conn: asyncpg.Connection, host: str | None, zone: str | None = None, *,
                   project: str = "demo", vm_state: str = "active",
                   task_state: str | None = None) -> str:
    """A server of ``project`` already on ``host`` (None: not placed yet); its id."""
    sid = uuid.uuid4()
    await conn.execute(
        """INSERT INTO servers (id, project_id, user_id, name, image_id, flavor_id, flavor,
                                vm_state, task_state, host, availability_zone, reservation_id)
           VALUES ($1, $2, 'u', $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        sid, project, f"old-{sid.hex[:6]}", IMAGE.id, SMALL.id, msgspec.to_builtins(SMALL),
        vm_state, task_state, host, zone, f"r-{sid.hex[:8]}")
    return str(sid)


async def three_hosts(conn: asyncpg.Connection) -> None:
    """a1 and a2 in az1, b1 in az2; b1 has the most free RAM, a2 the least."""
    await hosts.report(conn, capacity("a1", zone="az1", ram_mb=32768))
    await hosts.report(conn, capacity("a2", zone="az1", ram_mb=16384))
    await hosts.report(conn, capacity("b1", zone="az2", ram_mb=65536))


async def the_fault(conn: asyncpg.Connection, sid: UUID) -> str:
    row = await server_row(conn, sid)
    assert (row["vm_state"], row["task_state"], row["host"]) == ("error", None, None)
    [fault] = await faults(conn, sid)
    assert fault["code"] == 500
    return fault["message"]


async def test_locate_servers_sees_only_the_projects_placed_live_servers(
        db: asyncpg.Connection) -> None:
    await three_hosts(db)
    mine = await existing(db, "a2", "az1")
    erred = await existing(db, "b1", "az2", vm_state="error")
    theirs = await existing(db, "a1", "az1", project="alt")
    unplaced = await existing(db, None, vm_state="building", task_state="scheduling")
    deleted = await existing(db, "a1", "az1", vm_state="deleted")
    found = await locate_servers(db, "demo", [mine, erred, theirs, unplaced, deleted,
                                              "not-a-uuid", str(uuid.uuid4())])
    assert {sid: (p.host, p.availability_zone) for sid, p in found.items()} == {
        mine: ("a2", "az1"), erred: ("b1", "az2")}


async def test_same_host_goes_to_the_named_servers_host(
        db: asyncpg.Connection, scheduler: BuildScheduler, broker) -> None:
    await three_hosts(db)
    first, second = await existing(db, "a2", "az1"), await existing(db, "a2", "az1")
    build = await add_server(db)
    msg = ScheduleBuild(build=build, hints={"same_host": [first, second]})
    # Free RAM alone would pick b1.
    assert await scheduler.schedule_build(msg) == "a2"
    assert (await server_row(db, build.server_id))["host"] == "a2"
    assert await drain(broker, "a2") == [build]


async def test_different_host_avoids_the_named_servers_hosts(
        db: asyncpg.Connection, scheduler: BuildScheduler) -> None:
    await three_hosts(db)
    on_b1, on_a1 = await existing(db, "b1", "az2"), await existing(db, "a1", "az1")
    build = await add_server(db)
    msg = ScheduleBuild(build=build, hints={"different_host": [on_b1, on_a1]})
    assert await scheduler.schedule_build(msg) == "a2"


async def test_near_prefers_the_servers_host_then_its_zone(
        db: asyncpg.Connection, scheduler: BuildScheduler) -> None:
    await three_hosts(db)
    on_a2 = await existing(db, "a2", "az1")
    build = await add_server(db)
    assert await scheduler.schedule_build(ScheduleBuild(build=build, hints={"near": on_a2})) == "a2"

    # a2 full: elsewhere in az1 (a1), never b1 although it has the most room.
    await db.execute("UPDATE compute_hosts SET used_ram_mb = total_ram_mb WHERE host = 'a2'")
    build = await add_server(db)
    assert await scheduler.schedule_build(ScheduleBuild(build=build, hints={"near": on_a2})) == "a1"


async def test_same_and_different_host_of_one_server_is_error_with_the_failed_hint(
        db: asyncpg.Connection, scheduler: BuildScheduler, broker) -> None:
    await three_hosts(db)
    ref = await existing(db, "a1", "az1")
    build = await add_server(db)
    # Through handle(), as the queue delivers it, so the schedule_instance event is recorded.
    request_id = f"req-{uuid.uuid4()}"
    await actions.start_action(db, server_id=build.server_id, project_id="demo", user_id="u-demo",
                               action="create", request_id=request_id)
    await scheduler.handle(ScheduleBuild(build=build, hints={"same_host": [ref],
                                                             "different_host": [ref]}),
                           CallContext(request_id=request_id))
    assert await the_fault(db, build.server_id) == (
        "No valid host was found. Filter DifferentHostFilter returned 0 hosts (every host that "
        f"could take this server runs one of server {ref}).")
    [fault] = await faults(db, build.server_id)
    assert "SameHostFilter 3->1, DifferentHostFilter 1->0" in fault["details"]
    action = await actions.get(db, build.server_id, request_id)
    [event] = await actions.events(db, action["id"])
    assert (event["event"], event["result"]) == ("schedule_instance", "Error")
    assert await hosts.claim_of(db, build.server_id) is None
    assert all([await drain(broker, h) == [] for h in ("a1", "a2", "b1")])


async def test_same_host_whose_host_is_full_says_so(
        db: asyncpg.Connection, scheduler: BuildScheduler) -> None:
    await three_hosts(db)
    ref = await existing(db, "a1", "az1")
    await db.execute("UPDATE compute_hosts SET used_ram_mb = total_ram_mb WHERE host = 'a1'")
    build = await add_server(db)
    assert await scheduler.schedule_build(ScheduleBuild(build=build,
                                                        hints={"same_host": [ref]})) is None
    assert await the_fault(db, build.server_id) == (
        "No valid host was found. Filter SameHostFilter returned 0 hosts "
        f"(server {ref} is on a host that cannot take this server).")


async def test_a_server_of_another_project_cannot_be_named(
        db: asyncpg.Connection, scheduler: BuildScheduler) -> None:
    await three_hosts(db)
    theirs = await existing(db, "a1", "az1", project="alt")
    build = await add_server(db)
    assert await scheduler.schedule_build(ScheduleBuild(build=build,
                                                        hints={"same_host": [theirs]})) is None
    assert await the_fault(db, build.server_id) == (
        "No valid host was found. Filter SameHostFilter returned 0 hosts "
        f"(server {theirs} was not found, or is deleted or not placed on a host yet).")


async def test_deleted_or_unplaced_servers_cannot_meet_a_hint(
        db: asyncpg.Connection, scheduler: BuildScheduler) -> None:
    await three_hosts(db)
    deleted = await existing(db, "a1", "az1", vm_state="deleted")
    unplaced = await existing(db, None, vm_state="building", task_state="scheduling")
    for hints, flt in (({"same_host": [deleted]}, "SameHostFilter"),
                       ({"different_host": [unplaced]}, "DifferentHostFilter")):
        build = await add_server(db)
        assert await scheduler.schedule_build(ScheduleBuild(build=build, hints=hints)) is None
        message = await the_fault(db, build.server_id)
        assert message.startswith(f"No valid host was found. Filter {flt} returned 0 hosts (server ")
        assert "was not found, or is deleted or not placed on a host yet" in message


async def test_near_a_server_that_cannot_be_found_is_ignored(
        db: asyncpg.Connection, scheduler: BuildScheduler) -> None:
    await three_hosts(db)
    deleted = await existing(db, "a1", "az1", vm_state="deleted")
    unplaced = await existing(db, None, vm_state="building", task_state="scheduling")
    theirs = await existing(db, "a1", "az1", project="alt")
    for near in (deleted, unplaced, theirs, str(uuid.uuid4())):
        build = await add_server(db)
        # b1, where it goes without the hint (the most free RAM); a1 if near had counted.
        assert await scheduler.schedule_build(
            ScheduleBuild(build=build, hints={"near": near})) == "b1", near


async def test_unknown_hints_are_ignored(db: asyncpg.Connection, scheduler: BuildScheduler) -> None:
    await three_hosts(db)
    build = await add_server(db)
    msg = ScheduleBuild(build=build, hints={"query": "[\">=\", \"$free_ram_mb\", 1024]"})
    assert await scheduler.schedule_build(msg) == "b1"
