"""Rate limits counted in PostgreSQL (migration 0014), shared by every API process.

The leaky-bucket rules run on the database with an explicit ``now`` (the
functions' test hook) so that time moves only when a test moves it; the
replica tests use the database's own clock, through two pools and through two
compute apps, as two API processes would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.app import create_compute_app
from services.api.identity import (
    IdentitySettings,
    bootstrap_identity,
    create_identity_app,
    create_project,
)
from services.api.queries import quotas as q
from services.api.ratelimit import Rule, charge, status
from services.api.settings import ApiSettings, Settings
from shared.config import AmqpSettings, DatabaseSettings, LogSettings
from shared.db.pool import create_pool
from shared.outbox import Relay
from shared.rpc import RpcClient

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POST3 = Rule("POST", "*", ".*", 3, "MINUTE")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def project(db: asyncpg.Connection) -> str:
    return await create_project(db, f"rl-{uuid.uuid4().hex[:8]}")


async def test_burst_of_value_then_refused_until_one_request_drains(db) -> None:
    p = await project(db)
    for _ in range(3):
        assert await charge(db, p, [POST3], "POST", "/servers", at(0)) is None
    denial = await charge(db, p, [POST3], "POST", "/servers", at(0))
    assert denial is not None and denial.rule == POST3
    assert denial.retry_after == pytest.approx(20.0)      # 60 s / 3 requests
    denial = await charge(db, p, [POST3], "POST", "/servers", at(19.9))
    assert denial.retry_after == pytest.approx(0.1)
    assert await charge(db, p, [POST3], "POST", "/servers", at(20)) is None
    assert await charge(db, p, [POST3], "POST", "/servers", at(20)) is not None


async def test_refused_requests_are_not_counted_and_a_unit_drains_all(db) -> None:
    p = await project(db)
    for _ in range(3):
        assert await charge(db, p, [POST3], "POST", "/x", at(0)) is None
    for _ in range(5):  # hammering while refused does not push the wait further
        assert (await charge(db, p, [POST3], "POST", "/x", at(0))).retry_after \
            == pytest.approx(20.0)
    for _ in range(3):
        assert await charge(db, p, [POST3], "POST", "/x", at(60)) is None
    assert await charge(db, p, [POST3], "POST", "/x", at(60)) is not None


async def test_projects_have_their_own_allowance_and_only_matches_count(db) -> None:
    a, b = await project(db), await project(db)
    changes = Rule("GET", "*changes-since*", ".*changes-since.*", 1, "MINUTE")
    for _ in range(3):
        assert await charge(db, a, [POST3, changes], "POST", "/x", at(0)) is None
        assert await charge(db, a, [POST3, changes], "GET", "/servers", at(0)) is None
    assert await charge(db, a, [POST3], "POST", "/x", at(0)) is not None
    assert await charge(db, b, [POST3], "POST", "/x", at(0)) is None
    assert await charge(db, a, [changes], "GET", "/servers?changes-since=1", at(0)) is None
    assert (await charge(db, a, [changes], "GET", "/s?changes-since=1", at(0))).rule == changes


async def test_every_matching_rule_applies_and_a_refusal_charges_none(db) -> None:
    p = await project(db)
    creates = Rule("POST", "*/servers", "^/servers$", 1, "MINUTE")
    rules = [POST3, creates]
    assert await charge(db, p, rules, "POST", "/servers", at(0)) is None
    denial = await charge(db, p, rules, "POST", "/servers", at(0))
    assert denial.rule == creates and denial.retry_after == pytest.approx(60.0)
    # The refused create charged nothing to POST *: two POSTs are left.
    assert [s.remaining for s in await status(db, p, rules, at(0))] == [2, 0]
    assert await charge(db, p, rules, "POST", "/os-keypairs", at(0)) is None
    assert await charge(db, p, rules, "POST", "/os-keypairs", at(0)) is None
    assert (await charge(db, p, rules, "POST", "/os-keypairs", at(0))).rule == POST3


async def test_the_longest_wait_is_reported(db) -> None:
    p = await project(db)
    slow = Rule("POST", "*/servers", "^/servers", 1, "HOUR")
    fast = Rule("POST", "*", ".*", 1, "SECOND")
    assert await charge(db, p, [fast, slow], "POST", "/servers", at(0)) is None
    denial = await charge(db, p, [fast, slow], "POST", "/servers", at(0))
    assert denial.rule == slow and denial.retry_after == pytest.approx(3600.0)


async def test_status_remaining_and_next_available(db) -> None:
    p = await project(db)
    (fresh,) = await status(db, p, [POST3], at(0))
    assert fresh.remaining == 3 and fresh.next_available == pytest.approx(at(0).timestamp())
    for _ in range(3):
        await charge(db, p, [POST3], "POST", "/x", at(0))
    (spent,) = await status(db, p, [POST3], at(0))
    assert spent.remaining == 0 and spent.next_available == pytest.approx(at(20).timestamp())
    (later,) = await status(db, p, [POST3], at(25))  # one drained, 5 s into the next
    assert later.remaining == 1 and later.next_available == pytest.approx(at(25).timestamp())
    assert (await status(db, p, [POST3], at(125)))[0].remaining == 3
    assert (await status(db, p, [POST3], at(125)))[0].remaining == 3  # never charges


async def test_a_rule_whose_unit_shrank_does_not_wait_for_the_old_one(db) -> None:
    p = await project(db)
    daily = Rule("POST", "*", ".*", 1, "DAY")
    assert await charge(db, p, [daily], "POST", "/x", at(0)) is None
    per_minute = Rule("POST", "*", ".*", 1, "MINUTE")   # same (verb, uri): same bucket
    assert (await charge(db, p, [per_minute], "POST", "/x", at(0))).retry_after \
        == pytest.approx(60.0)


async def test_two_processes_racing_share_one_allowance(db, db_url: str) -> None:
    """Two pools (two API processes) charge 40 requests at once to a rule of 10."""
    p = await project(db)
    rule = Rule("POST", "*", ".*", 10, "HOUR")
    pools = [await create_pool(DatabaseSettings(url=db_url, pool_min=4, pool_max=4))
             for _ in range(2)]
    try:
        results = await asyncio.gather(*(charge(pools[i % 2], p, [rule], "POST", "/x")
                                         for i in range(40)))
    finally:
        for pool in pools:
            await pool.close()
    assert sum(r is None for r in results) == 10
    assert (await status(db, p, [rule]))[0].remaining == 0


@pytest.fixture
async def two_apps(db_url: str, amqp_url: str, rpc: RpcClient
                   ) -> AsyncIterator[tuple[list[TestClient], str, str]]:
    """Two compute apps, each with its own pool, on one database; a demo token."""
    pools = [await create_pool(DatabaseSettings(url=db_url, pool_min=1, pool_max=4))
             for _ in range(2)]
    async with pools[0].acquire() as conn:
        await bootstrap_identity(conn, IdentitySettings())
    identity = TestClient(TestServer(create_identity_app(pools[0], IdentitySettings(
        token_purge_interval_s=0))))
    await identity.start_server()
    resp = await identity.post("/v2.0/tokens", json={"auth": {"passwordCredentials": {
        "username": "demo", "password": "demo"}, "tenantName": "demo"}})
    access = (await resp.json())["access"]
    settings = Settings(database=DatabaseSettings(url=db_url), amqp=AmqpSettings(url=amqp_url),
                        log=LogSettings(), api=ApiSettings(), identity=IdentitySettings())
    clients = [TestClient(TestServer(create_compute_app(settings, pool, rpc, Relay(pool, rpc))))
               for pool in pools]
    for client in clients:
        await client.start_server()
    yield clients, access["token"]["id"], access["token"]["tenant"]["id"]
    for client in clients:
        await client.close()
    await identity.close()
    for pool in pools:
        await pool.close()


async def test_two_api_apps_count_one_allowance(two_apps, db) -> None:
    clients, token, pid = two_apps
    await q.set_rate_limit(db, pid, verb="GET", uri="*changes-since*",
                           regex=".*changes-since.*", value=3, unit="HOUR")
    headers = {"X-Auth-Token": token}
    url = f"/v2/{pid}/servers?changes-since=2020-01-01T00:00:00Z"
    codes = [(await clients[i % 2].get(url, headers=headers)).status for i in range(4)]
    assert codes == [200, 200, 200, 413]
    resp = await clients[1].get(f"/v2/{pid}/limits", headers=headers)
    rate = (await resp.json())["limits"]["rate"]
    (limit,) = next(g["limit"] for g in rate if g["uri"] == "*changes-since*")
    assert (limit["value"], limit["remaining"]) == (3, 0)
