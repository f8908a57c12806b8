"""Giving a delete back, and deleting without the host, leave nothing stuck."""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from shared.contracts.common import FlavorSpec
from shared.contracts.network import NetworkClient
from shared.db import images, servers
from shared.db.pool import connect
from shared.rpc import RpcClient
from shared.rpc import connect as rpc_connect
from shared.teardown import delete_without_host
from tests.integration.conftest import start_network

FLAVOR = FlavorSpec(id="100", name="standard.xsmall", ram_mb=1024, disk_gb=10, vcpus=1)


async def _server(conn: asyncpg.Connection, vm_state: str, task: str | None) -> uuid.UUID:
    sid = uuid.uuid4()
    await conn.execute(
        """INSERT INTO servers (id, project_id, user_id, name, flavor_id, flavor, vm_state,
                                task_state, host, reservation_id)
           VALUES ($1, 'p', 'u', 'vm', '100', $2, $3, $4, 'h1', 'r-1')""",
        sid, msgspec.to_builtins(FLAVOR), vm_state, task)
    return sid


async def test_a_delete_given_back_restores_the_build_in_flight(db_url):
    conn = await connect(db_url)
    try:
        sid = await _server(conn, "building", "spawning")
        claim = await servers.start_delete(conn, sid, "p", request_id=None)
        assert claim.claimed and claim.previous_task == "spawning"
        await servers.undo_delete(conn, sid, claim.previous_task)
        row = await servers.get(conn, sid)
        assert (row["vm_state"], row["task_state"]) == ("building", "spawning")
        # An idle server gets no task back.
        idle = await _server(conn, "active", None)
        claim = await servers.start_delete(conn, idle, "p", request_id=None)
        await servers.undo_delete(conn, idle, claim.previous_task)
        assert (await servers.get(conn, idle))["task_state"] is None
        # Another project's server cannot be claimed.
        assert not (await servers.start_delete(conn, sid, "other", request_id=None)).claimed
    finally:
        await conn.close()


async def test_deleting_without_the_host_fails_its_saving_snapshot(db_url, amqp_url):
    conn = await connect(db_url)
    net, net_task = await start_network(db_url, amqp_url)
    connection = await rpc_connect(amqp_url)
    rpc = RpcClient(connection, timeout=5)
    await rpc.start()
    try:
        sid = await _server(conn, "active", "image_snapshot")
        image_id = uuid.uuid4()
        await images.insert_snapshot(conn, image_id=image_id, name="snap", project_id="p",
                                     server_id=sid, metadata={}, min_disk_gb=10, min_ram_mb=0)
        assert await conn.fetchval("SELECT status FROM images WHERE id = $1", image_id) == "SAVING"

        pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
        try:
            await delete_without_host(pool, NetworkClient(rpc, request_id=None), sid)
        finally:
            await pool.close()
        assert (await servers.get(conn, sid))["vm_state"] == "deleted"
        assert await conn.fetchval("SELECT status FROM images WHERE id = $1", image_id) != "SAVING"
    finally:
        await conn.close()
        await rpc.close()
        await connection.close()
        net.stop()
        await net_task
