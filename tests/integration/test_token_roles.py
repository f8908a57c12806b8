"""A token's power follows the user's roles now, not only at issue: validation
re-reads the role assignments (on the compute API's path and the identity API's)."""

from __future__ import annotations

import asyncpg
from aiohttp.test_utils import TestClient

from services.api.identity import validate_token
from tests.integration.test_identity import (  # noqa: F401  (fixtures)
    client, pool, project_ids, v3_token)

_TAKE = """DELETE FROM role_assignments a USING users u, projects p, roles r
           WHERE a.user_id = u.id AND a.project_id = p.id AND a.role_id = r.id
             AND u.name = $1 AND p.name = $2 AND r.name = $3"""
_GIVE = """INSERT INTO role_assignments (user_id, project_id, role_id)
           SELECT u.id, p.id, r.id FROM users u, projects p, roles r
           WHERE u.name = $1 AND p.name = $2 AND r.name = $3"""


async def _shown_roles(client: TestClient, token: str) -> list[str]:
    resp = await client.get("/v3/auth/tokens", headers={"X-Auth-Token": token,
                                                        "X-Subject-Token": token})
    assert resp.status == 200, await resp.text()
    return [r["name"] for r in (await resp.json())["token"]["roles"]]


async def test_a_demoted_user_loses_the_role_in_existing_tokens(client: TestClient,
                                                                pool: asyncpg.Pool) -> None:
    token, body = await v3_token(client, "admin", "admin")
    assert sorted(r["name"] for r in body["roles"]) == ["admin", "member"]
    before = await validate_token(pool, token)
    assert before is not None and before.is_admin

    await pool.execute(_TAKE, "admin", "admin", "admin")

    after = await validate_token(pool, token)
    assert after is not None and not after.is_admin and after.roles == ("member",)
    assert await _shown_roles(client, token) == ["member"]
    resp = await client.get(f"/v2.0/tokens/{token}", headers={"X-Auth-Token": token})
    assert resp.status == 200
    assert [r["name"] for r in (await resp.json())["access"]["user"]["roles"]] == ["member"]


async def test_a_token_left_with_none_of_its_roles_is_refused(client: TestClient,
                                                              pool: asyncpg.Pool) -> None:
    token, _ = await v3_token(client, "demo", "demo")
    # The user stays on the project, but with another role than the token's.
    await pool.execute(_GIVE, "demo", "demo", "admin")
    await pool.execute(_TAKE, "demo", "demo", "member")
    assert await validate_token(pool, token) is None
    resp = await client.get("/v3/auth/projects", headers={"X-Auth-Token": token})
    assert resp.status == 401
    # A new token carries the role the user holds now.
    fresh, body = await v3_token(client, "demo", "demo")
    assert [r["name"] for r in body["roles"]] == ["admin"]
    principal = await validate_token(pool, fresh)
    assert principal is not None and principal.is_admin


async def test_a_role_granted_later_does_not_enter_existing_tokens(client: TestClient,
                                                                   pool: asyncpg.Pool) -> None:
    token, _ = await v3_token(client, "demo", "demo")
    await pool.execute(_GIVE, "demo", "demo", "admin")
    principal = await validate_token(pool, token)
    assert principal is not None and principal.roles == ("member",)
    assert await _shown_roles(client, token) == ["member"]


async def test_an_unscoped_token_needs_only_an_enabled_user(client: TestClient,
                                                            pool: asyncpg.Pool) -> None:
    token, _ = await v3_token(client, "demo", None)
    await pool.execute(_TAKE, "demo", "demo", "member")
    principal = await validate_token(pool, token)
    assert principal is not None and principal.project_id is None and principal.roles == ()
    await pool.execute("DELETE FROM users WHERE name = 'demo'")
    assert await validate_token(pool, token) is None
