"""Compute hosts' ids (os-hypervisors and os-services name hosts by them): a
heartbeat keeps a host's id and draws none, so a host first seen later gets the
next number; the state a report writes is as before."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.db import hosts
from shared.db.hosts import HostCapacity
from shared.db.pool import connect


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(db_url)
    try:
        yield conn
    finally:
        await conn.close()


def _cap(host: str, **kw) -> HostCapacity:
    fields = {"availability_zone": "az-ids", "total_ram_mb": 2048, "total_disk_gb": 40,
              "total_vcpus": 4} | kw
    return HostCapacity(host=host, **fields)


async def _id(db: asyncpg.Connection, host: str) -> int:
    return await db.fetchval("SELECT id FROM compute_hosts WHERE host = $1", host)


async def test_heartbeats_keep_the_id_and_draw_none(db):
    first, second = f"ids-{uuid.uuid4().hex[:6]}", f"ids-{uuid.uuid4().hex[:6]}"
    await hosts.report(db, _cap(first), starting=True)
    one = await _id(db, first)
    for _ in range(5):
        await hosts.report(db, _cap(first, total_vcpus=8, hypervisor_type="QEMU",
                                    capabilities={"rescue": True}))
    assert await _id(db, first) == one
    row = await db.fetchrow("SELECT * FROM compute_hosts WHERE host = $1", first)
    assert (row["total_vcpus"], row["hypervisor_type"], row["capabilities"]) == (
        8, "QEMU", {"rescue": True})
    await hosts.report(db, _cap(second))
    # Only the insert drew from the sequence: the next host is the next number.
    assert await _id(db, second) == one + 1


async def test_first_reports_racing_make_one_row(db_url, db):
    host = f"ids-{uuid.uuid4().hex[:6]}"
    conns = [await connect(db_url) for _ in range(4)]
    try:
        await asyncio.gather(*(hosts.report(c, _cap(host)) for c in conns))
    finally:
        for c in conns:
            await c.close()
    assert await db.fetchval("SELECT count(*) FROM compute_hosts WHERE host = $1", host) == 1


async def test_disable_with_a_reason_and_enable_clears_it(db):
    host = f"ids-{uuid.uuid4().hex[:6]}"
    await hosts.report(db, _cap(host))
    assert await hosts.set_disabled(db, host, True, "maintenance")
    (state,) = [h for h in await hosts.all_hosts(db, 60) if h.host == host]
    assert (state.disabled, state.disabled_reason, state.id) == (True, "maintenance",
                                                                 await _id(db, host))
    assert host not in {h.host for h in await hosts.live_hosts(db, 60)}
    assert await hosts.set_disabled(db, host, False, "ignored")
    (state,) = [h for h in await hosts.all_hosts(db, 60) if h.host == host]
    assert (state.disabled, state.disabled_reason) == (False, None)
    assert not await hosts.set_disabled(db, "no-such-host", True)
