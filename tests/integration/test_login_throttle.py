"""Login throttling and the password gate, through the identity app's HTTP API on
a real PostgreSQL: a throttled login is a Keystone-style 429 with Retry-After
and hashes nothing; a full gate is a 503; normal use is never throttled."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.identity import IdentitySettings, create_identity_app
from services.api.identity.context import GATE, THROTTLE
from tests.integration.test_identity import (  # noqa: F401  (fixtures)
    assert_keystone_error, pool, project_scope, v2_body, v3_body)

pytestmark = pytest.mark.usefixtures("pool")


def _settings(**kw: Any) -> IdentitySettings:
    base: dict[str, Any] = {"token_purge_interval_s": 0, "login_address_burst": 4.0,
                            "login_user_burst": 3.0}
    return IdentitySettings(**{**base, **kw})


async def _client(pool: asyncpg.Pool, settings: IdentitySettings) -> TestClient:
    client = TestClient(TestServer(create_identity_app(pool, settings)))
    await client.start_server()
    return client


@pytest.fixture
async def clients(pool: asyncpg.Pool) -> AsyncIterator[Callable[..., Any]]:
    made: list[TestClient] = []

    async def make(**kw: Any) -> TestClient:
        made.append(await _client(pool, _settings(**kw)))
        return made[-1]

    yield make
    for client in made:
        await client.close()


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def _login(client: TestClient, user: str = "demo", password: str | None = None,
                 headers: dict[str, str] | None = None) -> Any:
    return await client.post("/v3/auth/tokens", headers=headers,
                             json=v3_body(user, password, scope=project_scope(user)))


async def test_one_address_failing_is_throttled_before_any_hashing(clients) -> None:
    client = await clients(login_user_burst=100.0)
    for user in ("demo", "alt", "nobody", "admin"):
        await assert_keystone_error(await _login(client, user, "wrong"), 401)
    gate = client.server.app[GATE]
    hashed = gate.started

    resp = await _login(client, "demo", "demo")   # the right password, too late
    error = await assert_keystone_error(resp, 429)
    assert error["title"] == "Too Many Requests"
    assert int(resp.headers["Retry-After"]) == 6  # a failure refills in 60/10 s
    assert "X-Subject-Token" not in resp.headers
    resp = await client.post("/v2.0/tokens", json=v2_body("alt", tenantName="alt"))
    await assert_keystone_error(resp, 429)
    assert gate.started == hashed


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(clients) -> None:
    untrusted = await clients(login_user_burst=100.0)
    for i in range(4):
        await _login(untrusted, "demo", "wrong", _from(f"198.51.100.{i}"))
    await assert_keystone_error(await _login(untrusted, headers=_from("198.51.100.99")), 429)

    behind_proxy = await clients(login_user_burst=100.0, trusted_proxies="127.0.0.1")
    for i in range(4):
        await _login(behind_proxy, "demo", "wrong", _from(f"198.51.100.{i}"))
    assert (await _login(behind_proxy, headers=_from("198.51.100.99"))).status == 201
    for _ in range(4):
        await _login(behind_proxy, "demo", "wrong", _from("6.6.6.6, 198.51.100.7"))
    await assert_keystone_error(await _login(behind_proxy, headers=_from("198.51.100.7")), 429)


async def test_one_user_failing_from_many_addresses_is_throttled(clients,
                                                                 pool: asyncpg.Pool) -> None:
    client = await clients(trusted_proxies="127.0.0.1")
    for i in range(3):
        await assert_keystone_error(await _login(client, "demo", "wrong", _from(f"192.0.2.{i}")),
                                    401)
    resp = await _login(client, "demo", "demo", _from("203.0.113.50"))
    await assert_keystone_error(resp, 429)
    assert int(resp.headers["Retry-After"]) == 20  # 3 a minute
    # The same user by id, or through v2.0, gets no second allowance...
    user_id = await pool.fetchval("SELECT id FROM users WHERE name = 'demo'")
    by_id = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"id": user_id, "password": "demo"}}}}}
    resp = await client.post("/v3/auth/tokens", json=by_id, headers=_from("203.0.113.51"))
    await assert_keystone_error(resp, 429)
    resp = await client.post("/v2.0/tokens", json=v2_body("demo", tenantName="demo"),
                             headers=_from("203.0.113.52"))
    await assert_keystone_error(resp, 429)
    # ...while other users log in from the same addresses.
    assert (await _login(client, "alt", headers=_from("192.0.2.0"))).status == 201


async def test_a_user_is_not_throttled_by_their_own_logins(pool: asyncpg.Pool) -> None:
    client = await _client(pool, IdentitySettings(token_purge_interval_s=0))  # the defaults
    try:
        for typo in ("demoo", "Demo"):
            await assert_keystone_error(await _login(client, "demo", typo), 401)
        for _ in range(40):
            resp = await _login(client)
            assert resp.status == 201, await resp.text()
    finally:
        await client.close()


def _slow_hash(password: str) -> str:
    """The password hashed at the most cost passwords.verify_password accepts
    (64 MiB, p=4: about a second), so that a check is still running when looked at."""
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**16, r=8, p=4,
                            maxmem=2**27, dklen=32)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    return f"scrypt$65536$8$4${b64(salt)}${b64(digest)}"


async def test_a_full_password_gate_refuses_at_once_with_503(clients,
                                                             pool: asyncpg.Pool) -> None:
    await pool.execute("UPDATE users SET password_hash = $1 WHERE name = 'alt'",
                       _slow_hash("alt"))
    client = await clients(password_check_threads=1, password_check_queue=0)
    gate, throttle = client.server.app[GATE], client.server.app[THROTTLE]
    slow = asyncio.create_task(_login(client, "alt"))
    deadline = time.monotonic() + 10
    while gate.started == 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.005)

    resp = await _login(client, "demo")
    error = await assert_keystone_error(resp, 503)
    assert error["title"] == "Service Unavailable"
    assert resp.headers["Retry-After"] == "1"
    assert gate.started == 1
    assert throttle.users is not None and throttle.users.level("name:demo") == 3  # no charge

    assert (await slow).status == 201
    assert (await _login(client, "demo")).status == 201
