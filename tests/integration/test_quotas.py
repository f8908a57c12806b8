"""Quotas on real PostgreSQL: per-project overrides, usage counted from live
servers, and the per-project lock that keeps concurrent creates within them."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from services.api import quotas
from services.api.identity import create_project
from services.api.queries import quotas as q
from services.api.queries import servers as server_q
from services.api.ratelimit import Rule, load_overrides
from shared.contracts.common import FlavorSpec
from shared.db.pool import connect
from shared.errors import OverLimit

SMALL = FlavorSpec(id="100", name="standard.xsmall", ram_mb=1024, disk_gb=10, vcpus=1)
MEDIUM = FlavorSpec(id="102", name="standard.medium", ram_mb=4096, disk_gb=30, vcpus=2)


async def _project(db: asyncpg.Connection) -> str:
    return await create_project(db, f"q-{uuid.uuid4().hex[:8]}")


async def _insert(conn: asyncpg.Connection, project_id: str, flavor: FlavorSpec) -> uuid.UUID:
    sid = uuid.uuid4()
    await server_q.insert(conn, id=sid, project_id=project_id, user_id="u", name="s",
                          image_id=None, flavor_id=flavor.id, flavor=flavor,
                          availability_zone=None, metadata={}, security_groups=["default"],
                          key_name=None, config_drive=False, reservation_id="r-1",
                          request_id="req-1")
    return sid


async def _create(db_url: str, project_id: str, flavor: FlavorSpec, *, min_count: int = 1,
                  max_count: int = 1, gate: asyncio.Event | None = None) -> int:
    """What create server does: claim under the lock, insert, commit."""
    conn = await connect(db_url)
    try:
        if gate is not None:
            await gate.wait()
        async with conn.transaction():
            limits = await quotas.absolute_limits(conn, project_id)
            n = await quotas.claim_servers(conn, project_id, limits, vcpus=flavor.vcpus,
                                           ram_mb=flavor.ram_mb, min_count=min_count,
                                           max_count=max_count)
            for _ in range(n):
                await _insert(conn, project_id, flavor)
            await quotas.confirm_servers(conn, project_id, vcpus=flavor.vcpus,
                                         ram_mb=flavor.ram_mb, count=n)
        return n
    finally:
        await conn.close()


async def _live(db: asyncpg.Connection, project_id: str) -> int:
    return await db.fetchval(
        "SELECT count(*) FROM servers WHERE project_id = $1 AND deleted_at IS NULL", project_id)


async def test_limits_are_the_defaults_with_the_projects_own_on_top(db):
    pid, other = await _project(db), await _project(db)
    assert await quotas.absolute_limits(db, pid) == quotas.DEFAULT_LIMITS
    await q.set_quota(db, pid, "maxTotalInstances", 5)
    await q.set_quota(db, pid, "maxTotalCores", 8)
    await q.set_quota(db, pid, "maxTotalCores", 12)     # set again: replaced
    limits = await quotas.absolute_limits(db, pid)
    assert limits == {**quotas.DEFAULT_LIMITS, "maxTotalInstances": 5, "maxTotalCores": 12}
    assert await quotas.absolute_limits(db, other) == quotas.DEFAULT_LIMITS
    await q.set_quota(db, pid, "maxTotalCores", None)   # back to the default
    assert (await quotas.absolute_limits(db, pid))["maxTotalCores"] == -1
    with pytest.raises(asyncpg.CheckViolationError):
        await q.set_quota(db, pid, "maxTotalInstances", -2)


async def test_usage_counts_live_servers_only(db):
    pid = await _project(db)
    await _insert(db, pid, SMALL)
    gone = await _insert(db, pid, MEDIUM)
    await _insert(db, pid, MEDIUM)
    await _insert(db, await _project(db), MEDIUM)       # another project's
    await db.execute("UPDATE servers SET vm_state = 'deleted', deleted_at = now() WHERE id = $1",
                     gone)
    await db.execute("INSERT INTO security_groups (project_id, name) VALUES ($1, 'default'), "
                     "($1, 'web')", pid)
    assert await quotas.usage(db, pid) == quotas.Usage(instances=2, cores=3, ram_mb=5120)
    assert await quotas.used_limits(db, pid) == {
        "totalInstancesUsed": 2, "totalCoresUsed": 3, "totalRAMUsed": 5120,
        "totalFloatingIpsUsed": 0, "totalSecurityGroupsUsed": 2,
        "totalVolumesUsed": 0, "totalVolumeGigabytesUsed": 0}


_RECOUNT = """
SELECT count(*) AS instances, coalesce(sum((flavor->>'vcpus')::bigint), 0) AS cores,
       coalesce(sum((flavor->>'ram_mb')::bigint), 0) AS ram_mb
  FROM servers WHERE project_id = $1 AND deleted_at IS NULL"""


async def test_kept_usage_matches_a_recount_on_every_path(db):
    """The usage row (migration 0017's trigger) against a count of the servers
    themselves, after each way a server's row changes."""
    pid = await _project(db)

    async def check() -> None:
        row = await db.fetchrow(_RECOUNT, pid)
        assert await quotas.usage(db, pid) == quotas.Usage(*map(int, row.values()))

    await check()                                          # no servers, no row yet
    a = await _insert(db, pid, SMALL)
    b = await _insert(db, pid, MEDIUM)
    await check()
    await db.execute("UPDATE servers SET flavor = $2 WHERE id = $1", a, MEDIUM)   # resized
    await check()
    await db.execute("UPDATE servers SET deleted_at = now() WHERE id = $1", b)     # deleted
    await check()
    await db.execute("UPDATE servers SET name = 'renamed', deleted_at = now() WHERE id = $1",
                     b)                                    # deleted again: counted once
    await check()
    await db.execute("DELETE FROM servers WHERE id = $1", b)                      # purged
    await check()
    await db.execute("DELETE FROM servers WHERE id = $1", a)                      # purged live
    await check()
    assert await quotas.usage(db, pid) == quotas.Usage(0, 0, 0)


@pytest.mark.parametrize("limit, value, flavor, expect", [
    ("maxTotalInstances", 5, SMALL, 5),
    ("maxTotalCores", 5, MEDIUM, 2),          # 2 cores each (RAM would allow 3)
    ("maxTotalRAMSize", 10240, MEDIUM, 2),    # 4096 MB each
])
async def test_concurrent_creates_never_pass_the_quota(db, db_url, limit, value, flavor, expect):
    pid = await _project(db)
    await q.set_quota(db, pid, limit, value)
    gate = asyncio.Event()
    tasks = [asyncio.create_task(_create(db_url, pid, flavor, gate=gate)) for _ in range(20)]
    await asyncio.sleep(0)  # let every task connect before the gate opens
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    accepted = [r for r in results if r == 1]
    refused = [r for r in results if isinstance(r, OverLimit)]
    assert len(accepted) == expect and len(refused) == 20 - expect, results
    assert await _live(db, pid) == expect
    assert all(str(r).startswith("Quota exceeded for ") for r in refused)


async def test_multiple_create_takes_what_fits_or_nothing(db, db_url):
    pid = await _project(db)
    await q.set_quota(db, pid, "maxTotalInstances", 5)
    await _insert(db, pid, SMALL)
    await _insert(db, pid, SMALL)
    await _insert(db, pid, SMALL)
    with pytest.raises(OverLimit) as exc:
        await _create(db_url, pid, SMALL, min_count=3, max_count=10)
    assert exc.value.message == ("Quota exceeded for instances: Requested 3, but already "
                                 "used 3 of 5 instances")
    assert exc.value.details == "Can only run 2 more instance(s) of this type."
    assert exc.value.headers == {"Retry-After": "0"}  # waiting frees no quota
    assert await _live(db, pid) == 3
    assert await _create(db_url, pid, SMALL, min_count=1, max_count=10) == 2
    assert await _live(db, pid) == 5
    with pytest.raises(OverLimit) as exc:
        await _create(db_url, pid, SMALL)
    assert exc.value.details == "Cannot run any more instances of this type."


async def test_several_limits_exceeded_are_all_named(db, db_url):
    pid = await _project(db)
    await q.set_quota(db, pid, "maxTotalInstances", 1)
    await q.set_quota(db, pid, "maxTotalRAMSize", 2048)
    with pytest.raises(OverLimit) as exc:
        await _create(db_url, pid, MEDIUM, min_count=2, max_count=2)
    assert exc.value.message == ("Quota exceeded for instances, ram: Requested 2, but already "
                                 "used 0 of 1 instances")


async def test_unlimited_quotas_still_cap_one_request(db, db_url):
    pid = await _project(db)
    for key in ("maxTotalInstances", "maxTotalRAMSize", "maxTotalCores"):
        await q.set_quota(db, pid, key, -1)
    limits = await quotas.absolute_limits(db, pid)
    used = await quotas.usage(db, pid)
    assert quotas.servers_to_create(limits, used, vcpus=1, ram_mb=1024, min_count=1,
                                    max_count=10**6) == quotas.MAX_SERVERS_PER_REQUEST
    with pytest.raises(OverLimit):
        quotas.servers_to_create(limits, used, vcpus=1, ram_mb=1024,
                                 min_count=quotas.MAX_SERVERS_PER_REQUEST + 1, max_count=10**6)
    assert await _create(db_url, pid, SMALL, min_count=3, max_count=3) == 3


async def test_confirm_outside_a_transaction_is_a_bug(db):
    with pytest.raises(RuntimeError):
        await quotas.confirm_servers(db, await _project(db), vcpus=1, ram_mb=1024, count=1)


async def test_a_create_that_raced_past_its_read_is_refused_at_confirm(db, db_url):
    """Two creates both read room for one more server; the second to confirm is
    refused and writes nothing, whichever of them it is."""
    pid = await _project(db)
    await q.set_quota(db, pid, "maxTotalInstances", 1)
    conns = [await connect(db_url) for _ in range(2)]
    try:
        txs = [c.transaction() for c in conns]
        for c, tx in zip(conns, txs):
            await tx.start()
            limits = await quotas.absolute_limits(c, pid)
            assert await quotas.claim_servers(c, pid, limits, vcpus=1, ram_mb=1024) == 1
        await _insert(conns[0], pid, SMALL)
        await quotas.confirm_servers(conns[0], pid, vcpus=1, ram_mb=1024, count=1)
        await txs[0].commit()
        await _insert(conns[1], pid, SMALL)
        with pytest.raises(OverLimit) as refused:
            await quotas.confirm_servers(conns[1], pid, vcpus=1, ram_mb=1024, count=1)
        await txs[1].rollback()
    finally:
        for c in conns:
            await c.close()
    assert "Quota exceeded for instances: Requested 1, but already used 1 of 1" \
        in str(refused.value)
    assert await _live(db, pid) == 1


async def test_rate_limit_rows_replace_by_verb_and_uri(db):
    pid = await _project(db)
    await q.set_rate_limit(db, pid, verb="POST", uri="*", regex=".*", value=3, unit="MINUTE")
    await q.set_rate_limit(db, pid, verb="POST", uri="*", regex=".*", value=5, unit="HOUR")
    await q.set_rate_limit(db, pid, verb="GET", uri="*", regex="^/servers", value=9, unit="DAY")
    rules = await load_overrides(db, pid)
    assert rules == [Rule("POST", "*", ".*", 5, "HOUR"), Rule("GET", "*", "^/servers", 9, "DAY")]
    with pytest.raises(asyncpg.CheckViolationError):
        await q.set_rate_limit(db, pid, verb="PATCH", uri="*", regex=".*", value=1, unit="DAY")
    assert await q.clear_rate_limits(db, pid) == 2
    assert await load_overrides(db, pid) == []
