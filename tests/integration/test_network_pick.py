"""The fixed IP pick's cost does not grow with the addresses taken before it.

A taken address leaves a dead entry in the partial index of free addresses
until VACUUM; a pick that starts at the network's lowest address steps over
all of them. The pick starts after the address taken last (``ports.NextFit``),
so it reads the same few buffers however many were taken. Buffers read, from
EXPLAIN (ANALYZE, BUFFERS), not time: they do not depend on the machine's load.
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.network import networks, ports

SUPERNET = ipaddress.IPv4Network("10.0.0.0/8")
TAKEN = 20_000


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(db_url)
    try:
        yield c
    finally:
        await c.close()


async def pick(conn: asyncpg.Connection, network_id: uuid.UUID,
               after: ipaddress.IPv4Address) -> tuple[int, str]:
    """The buffers the pick after ``after`` reads, and its plan (rolled back)."""
    tr = conn.transaction()
    await tr.start()
    try:
        [plan] = json.loads(await conn.fetchval(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + ports._TAKE_ADDRESS,
            network_id, uuid.uuid4(), after))
    finally:
        await tr.rollback()
    return plan["Plan"]["Shared Hit Blocks"] + plan["Plan"]["Shared Read Blocks"], json.dumps(plan)


async def test_a_next_fit_pick_reads_as_much_after_20000_taken_as_after_none(
        conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        net = await networks.ensure_default(conn, "p", supernet=SUPERNET, name="private",
                                            prefixlen=16)
    await conn.execute("VACUUM ANALYZE fixed_ips")
    first = ipaddress.IPv4Address("10.0.0.2")
    lowest = ipaddress.IPv4Address(0)
    fresh, plan = await pick(conn, net.id, lowest)
    assert "fixed_ips_free_idx" in plan and "Seq Scan" not in plan

    # Take the lowest 20,000 (dead entries in the free index until VACUUM).
    await conn.execute("UPDATE fixed_ips SET server_id = gen_random_uuid() "
                       "WHERE network_id = $1 AND address < $2::inet", net.id, first + TAKEN)
    await conn.execute("ANALYZE fixed_ips")   # as autovacuum would (no VACUUM: that is the point)
    last = first + TAKEN - 1
    for _ in range(2):   # the first scan marks the dead entries; count the second
        next_fit, plan = await pick(conn, net.id, last)
        from_lowest, _ = await pick(conn, net.id, lowest)
    assert "fixed_ips_free_idx" in plan and "Seq Scan" not in plan
    assert next_fit <= fresh + 3
    assert from_lowest > 3 * next_fit, (fresh, next_fit, from_lowest)   # 24, 22, 120 here
