"""Revoking a token revokes every token rescoped from it, transitively, and
nothing else: not its parent, not its siblings' unrelated tokens."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.api.identity import auth, validate_token
from services.api.identity.errors import Unauthorized
from services.api.identity.tokens import revoke_token
from tests.integration.test_identity import (  # noqa: F401  (fixtures)
    SETTINGS, client, pool, project_scope, v3_token)


async def _rescope_v3(client: TestClient, token: str, project: str = "demo") -> str:
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}},
                     "scope": project_scope(project)}}
    resp = await client.post("/v3/auth/tokens", json=body)
    assert resp.status == 201, await resp.text()
    return resp.headers["X-Subject-Token"]


async def _rescope_v2(client: TestClient, token: str, tenant: str = "demo") -> str:
    resp = await client.post("/v2.0/tokens", json={"auth": {"token": {"id": token},
                                                             "tenantName": tenant}})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["access"]["token"]["id"]


async def _valid(pool: asyncpg.Pool, *tokens: str) -> list[bool]:
    return [await validate_token(pool, t) is not None for t in tokens]


async def test_revoking_a_token_revokes_its_descendants_only(client: TestClient,
                                                             pool: asyncpg.Pool) -> None:
    root, _ = await v3_token(client, "demo", None)    # unscoped, by password
    child = await _rescope_v3(client, root)           # root -> child
    grandchild = await _rescope_v2(client, child)     # child -> grandchild, through v2.0
    sibling = await _rescope_v3(client, root)         # root -> sibling
    other, _ = await v3_token(client, "demo", "demo")  # the same user's own login
    assert await _valid(pool, root, child, grandchild, sibling, other) == [True] * 5

    resp = await client.delete("/v3/auth/tokens", headers={"X-Auth-Token": other,
                                                           "X-Subject-Token": child})
    assert resp.status == 204
    assert await _valid(pool, root, child, grandchild, sibling, other) == [
        True, False, False, True, True]
    # The revoked token cannot be rescoped again either.
    resp = await client.post("/v2.0/tokens", json={"auth": {"token": {"id": child},
                                                             "tenantName": "demo"}})
    assert resp.status == 401

    resp = await client.delete(f"/v2.0/tokens/{root}", headers={"X-Auth-Token": other})
    assert resp.status == 204
    assert await _valid(pool, root, sibling, other) == [False, False, True]


async def test_a_long_chain_goes_at_once(client: TestClient, pool: asyncpg.Pool) -> None:
    chain = [(await v3_token(client, "demo", "demo"))[0]]
    for _ in range(20):
        chain.append(await _rescope_v3(client, chain[-1]))
    assert await revoke_token(pool, chain[0])
    assert await _valid(pool, *chain) == [False] * len(chain)
    assert await pool.fetchval("SELECT count(*) FROM tokens") == 0


async def test_a_rescope_racing_its_parents_revocation_is_refused(client: TestClient,
                                                                  pool: asyncpg.Pool) -> None:
    parent, _ = await v3_token(client, "demo", None)
    async with pool.acquire() as conn:
        who = await auth.by_token(conn, parent)        # the parent was valid when checked...
        assert await revoke_token(conn, parent)         # ...and is revoked before the insert
        project = await auth.resolve_project(conn, who, project_name="demo",
                                             domain_id="default")
        with pytest.raises(Unauthorized):
            await auth.grant(conn, SETTINGS, who, project, api_version="v3")
    assert await pool.fetchval("SELECT count(*) FROM tokens") == 0
