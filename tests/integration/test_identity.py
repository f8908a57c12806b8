"""The identity service against a real PostgreSQL: bootstrap, v2.0 and v3 tokens,
catalog shapes, validation for the compute API, and real clients (keystoneauth1,
openstacksdk) talking to a running instance over a socket."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.identity import (DuplicateName, IdentitySettings, ProjectNotFound,
                                   RoleNotFound, bootstrap_identity, create_identity_app,
                                   create_project, create_user, purge_expired_tokens,
                                   validate_token)
from services.api.identity.passwords import verify_password
from shared.config import DatabaseSettings
from shared.db.pool import create_pool

SETTINGS = IdentitySettings(token_purge_interval_s=0)
COMPUTE = "http://127.0.0.1:8774"
PASSWORDS = {"demo": "demo", "alt": "alt", "admin": "admin"}


# --------------------------------------------------------------------------- fixtures

@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(DatabaseSettings(url=db_url, pool_min=1, pool_max=4))
    try:
        async with p.acquire() as conn:
            await bootstrap_identity(conn, SETTINGS)
        yield p
    finally:
        await p.close()


@pytest.fixture
async def client(pool: asyncpg.Pool) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_identity_app(pool, SETTINGS))) as c:
        yield c


@pytest.fixture
async def project_ids(pool: asyncpg.Pool) -> dict[str, str]:
    return {r["name"]: r["id"] for r in await pool.fetch("SELECT id, name FROM projects")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def live_url(pool: asyncpg.Pool) -> AsyncIterator[str]:
    """A running instance on a real port whose public_url is its own address,
    so that version discovery sends clients back to it."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = IdentitySettings(public_url=url, token_purge_interval_s=0)
    server = TestServer(create_identity_app(pool, settings), host="127.0.0.1", port=port)
    await server.start_server()
    try:
        yield url
    finally:
        await server.close()


# --------------------------------------------------------------------------- helpers

def v2_body(user: str = "demo", password: str | None = None, **tenant: str) -> dict[str, Any]:
    auth: dict[str, Any] = {"passwordCredentials": {
        "username": user, "password": PASSWORDS.get(user, "x") if password is None else password}}
    auth.update(tenant)
    return {"auth": auth}


def v3_body(user: str = "demo", password: str | None = None, *,
            user_domain: dict[str, str] | None = None, scope: Any = None,
            user_id: str | None = None) -> dict[str, Any]:
    user_ref: dict[str, Any] = {"password": PASSWORDS.get(user, "x") if password is None
                                else password}
    if user_id is not None:
        user_ref["id"] = user_id
    else:
        user_ref["name"] = user
        user_ref["domain"] = {"id": "default"} if user_domain is None else user_domain
    auth: dict[str, Any] = {"identity": {"methods": ["password"],
                                         "password": {"user": user_ref}}}
    if scope is not None:
        auth["scope"] = scope
    return {"auth": auth}


def project_scope(name: str = "demo", domain: dict[str, str] | None = None) -> dict[str, Any]:
    return {"project": {"name": name, "domain": domain or {"id": "default"}}}


async def v3_token(client: TestClient, user: str = "demo", project: str | None = "demo"
                   ) -> tuple[str, dict[str, Any]]:
    scope = project_scope(project) if project else "unscoped"
    resp = await client.post("/v3/auth/tokens", json=v3_body(user, scope=scope))
    assert resp.status == 201, await resp.text()
    return resp.headers["X-Subject-Token"], (await resp.json())["token"]


async def assert_keystone_error(resp: Any, code: int) -> dict[str, Any]:
    assert resp.status == code, await resp.text()
    body = await resp.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["title"], str) and body["error"]["title"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Keystone uri=")
    return body["error"]


# --------------------------------------------------------------------------- bootstrap

async def _snapshot(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "domains": "SELECT id, name FROM domains ORDER BY id",
        "projects": "SELECT id, name, domain_id FROM projects ORDER BY name",
        "users": "SELECT id, name, password_hash, default_project_id FROM users ORDER BY name",
        "roles": "SELECT id, name FROM roles ORDER BY name",
        "assignments": """SELECT u.name, p.name, r.name FROM role_assignments a
                          JOIN users u ON u.id = a.user_id JOIN projects p ON p.id = a.project_id
                          JOIN roles r ON r.id = a.role_id ORDER BY 1, 2, 3""",
    }
    return {k: [tuple(r) for r in await conn.fetch(q)] for k, q in queries.items()}


async def test_bootstrap_creates_contract_accounts_and_is_idempotent(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        first = await _snapshot(conn)
        await bootstrap_identity(conn, SETTINGS)
        await bootstrap_identity(conn, SETTINGS)
        again = await _snapshot(conn)
    assert again == first  # same rows, same ids, same hashes (no needless rehash)
    assert first["domains"] == [("default", "Default")]
    assert [p[1] for p in first["projects"]] == ["admin", "alt", "demo"]
    assert all(p[2] == "default" for p in first["projects"])
    assert {r[1] for r in first["roles"]} >= {"member", "admin"}
    assert first["assignments"] == [("admin", "admin", "admin"), ("admin", "admin", "member"),
                                     ("alt", "alt", "member"), ("demo", "demo", "member")]
    project_by_id = {p[0]: p[1] for p in first["projects"]}
    for _uid, name, _hash, default_project in first["users"]:
        assert project_by_id[default_project] == name
    for project_id, _name, _dom in first["projects"]:
        assert len(project_id) == 32 and int(project_id, 16) >= 0


async def test_bootstrap_applies_a_changed_password_setting(client: TestClient,
                                                            pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await bootstrap_identity(conn, IdentitySettings(demo_password="s3cret"))
    resp = await client.post("/v2.0/tokens", json=v2_body("demo", "demo", tenantName="demo"))
    await assert_keystone_error(resp, 401)
    resp = await client.post("/v2.0/tokens", json=v2_body("demo", "s3cret", tenantName="demo"))
    assert resp.status == 200


async def test_passwords_are_stored_only_as_scrypt_hashes(pool: asyncpg.Pool) -> None:
    rows = [dict(r) for r in await pool.fetch("SELECT * FROM users")]
    assert {r["name"] for r in rows} == {"demo", "alt", "admin"}
    salts = set()
    for row in rows:
        password = PASSWORDS[row["name"]]
        # No column holds the password, except the name where they coincide.
        assert [k for k, v in row.items() if v == password] == ["name"]
        encoded = row["password_hash"]
        scheme, n, r, p, salt, digest = encoded.split("$")
        assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
        assert len(digest) == 43  # 32 bytes, unpadded base64
        assert verify_password(password, encoded)
        assert not verify_password(password + "x", encoded)
        salts.add(salt)
    assert len(salts) == 3  # one random salt per password


# --------------------------------------------------------------------------- version discovery

async def test_root_lists_v3_and_v2_with_300(client: TestClient) -> None:
    resp = await client.get("/")
    assert resp.status == 300
    values = (await resp.json())["versions"]["values"]
    by_id = {v["id"]: v for v in values}
    assert set(by_id) == {"v3.14", "v2.0"}
    assert by_id["v3.14"]["status"] == "stable"
    assert by_id["v2.0"]["status"] == "deprecated"
    assert {"rel": "self", "href": "http://127.0.0.1:5000/v3/"} in by_id["v3.14"]["links"]
    assert {"rel": "self", "href": "http://127.0.0.1:5000/v2.0/"} in by_id["v2.0"]["links"]
    assert by_id["v3.14"]["media-types"][0]["type"] == "application/vnd.openstack.identity-v3+json"


@pytest.mark.parametrize("path,version_id", [("/v3", "v3.14"), ("/v3/", "v3.14"),
                                             ("/v2.0", "v2.0"), ("/v2.0/", "v2.0")])
async def test_version_documents(client: TestClient, path: str, version_id: str) -> None:
    resp = await client.get(path)
    assert resp.status == 200
    version = (await resp.json())["version"]
    assert version["id"] == version_id
    assert version["links"][0]["href"] == f"http://127.0.0.1:5000{path.rstrip('/')}/"


# --------------------------------------------------------------------------- v2.0 tokens

def _check_v2_catalog(catalog: list[dict[str, Any]], project_id: str) -> None:
    assert sorted(s["type"] for s in catalog) == ["block-storage", "compute", "identity", "image", "network", "volumev3"]
    by_type = {s["type"]: s for s in catalog}
    compute = by_type["compute"]
    assert compute["name"] == "Compute"
    assert len(compute["endpoints"]) == 1
    ep = compute["endpoints"][0]
    assert set(ep) == {"publicURL", "internalURL", "adminURL", "region", "id"}
    url = f"{COMPUTE}/v2/{project_id}"
    assert (ep["publicURL"], ep["internalURL"], ep["adminURL"]) == (url, url, url)
    assert ep["region"] == "region-a"
    identity = by_type["identity"]["endpoints"][0]
    assert set(identity) == {"publicURL", "internalURL", "adminURL", "region", "id"}
    assert identity["publicURL"] == "http://127.0.0.1:5000/v2.0"


@pytest.mark.parametrize("by", ["tenantName", "tenantId"])
async def test_v2_token_for_demo(client: TestClient, pool: asyncpg.Pool,
                                 project_ids: dict[str, str], by: str) -> None:
    tenant = {"tenantName": "demo"} if by == "tenantName" else {"tenantId": project_ids["demo"]}
    resp = await client.post("/v2.0/tokens", json=v2_body("demo", **tenant))
    assert resp.status == 200, await resp.text()
    access = (await resp.json())["access"]
    token = access["token"]
    assert token["tenant"] == {"id": project_ids["demo"], "name": "demo", "enabled": True,
                               "description": None}
    assert token["expires"].endswith("Z") and len(token["expires"]) == 20  # Tempest's format
    assert len(token["audit_ids"]) == 1
    user = access["user"]
    assert (user["name"], user["username"]) == ("demo", "demo")
    assert user["roles"] == [{"name": "member"}] and user["roles_links"] == []
    _check_v2_catalog(access["serviceCatalog"], project_ids["demo"])

    principal = await validate_token(pool, token["id"])
    assert principal is not None
    assert (principal.project_id, principal.project_name) == (project_ids["demo"], "demo")
    assert (principal.user_id, principal.user_name) == (user["id"], "demo")
    assert principal.roles == ("member",) and not principal.is_admin
    assert principal.domain_id == "default"


async def test_v2_unscoped_token_has_no_tenant_and_empty_catalog(client: TestClient,
                                                                 pool: asyncpg.Pool) -> None:
    resp = await client.post("/v2.0/tokens", json=v2_body("demo"))
    assert resp.status == 200
    access = (await resp.json())["access"]
    assert "tenant" not in access["token"]
    assert access["serviceCatalog"] == []
    principal = await validate_token(pool, access["token"]["id"])
    assert principal is not None and principal.project_id is None and principal.roles == ()


async def test_v2_token_auth_rescopes(client: TestClient, project_ids: dict[str, str]) -> None:
    resp = await client.post("/v2.0/tokens", json=v2_body("admin"))
    unscoped = (await resp.json())["access"]["token"]
    resp = await client.post("/v2.0/tokens", json={"auth": {"token": {"id": unscoped["id"]},
                                                             "tenantName": "admin"}})
    assert resp.status == 200, await resp.text()
    access = (await resp.json())["access"]
    assert access["token"]["tenant"]["id"] == project_ids["admin"]
    assert access["token"]["expires"] == unscoped["expires"]
    assert access["token"]["audit_ids"][1] == unscoped["audit_ids"][0]
    assert sorted(r["name"] for r in access["user"]["roles"]) == ["admin", "member"]
    # no access to a project the user holds no role on
    resp = await client.post("/v2.0/tokens", json={"auth": {"token": {"id": unscoped["id"]},
                                                             "tenantName": "demo"}})
    await assert_keystone_error(resp, 401)


async def test_v2_tenants_lists_the_callers_projects(client: TestClient) -> None:
    resp = await client.post("/v2.0/tokens", json=v2_body("alt"))
    token = (await resp.json())["access"]["token"]["id"]
    resp = await client.get("/v2.0/tenants", headers={"X-Auth-Token": token})
    assert resp.status == 200
    assert [t["name"] for t in (await resp.json())["tenants"]] == ["alt"]
    resp = await client.get("/v2.0/tenants", headers={"X-Auth-Token": "nope"})
    await assert_keystone_error(resp, 401)


# --------------------------------------------------------------------------- v3 tokens

def _check_v3_catalog(catalog: list[dict[str, Any]], project_id: str) -> None:
    assert sorted(s["type"] for s in catalog) == ["block-storage", "compute", "identity", "image", "network", "volumev3"]
    by_type = {s["type"]: s for s in catalog}
    assert by_type["compute"]["name"] == "Compute"
    for service_type, url in (("compute", f"{COMPUTE}/v2/{project_id}"),
                              ("identity", "http://127.0.0.1:5000/v3")):
        endpoints = by_type[service_type]["endpoints"]
        assert sorted(e["interface"] for e in endpoints) == ["admin", "internal", "public"]
        for ep in endpoints:
            assert set(ep) == {"id", "interface", "region", "region_id", "url"}
            assert (ep["region"], ep["region_id"], ep["url"]) == ("region-a", "region-a", url)
        assert len({e["id"] for e in endpoints}) == 3


@pytest.mark.parametrize("how", ["name+domain id", "name+domain name", "id"])
async def test_v3_project_scoped_token(client: TestClient, pool: asyncpg.Pool,
                                       project_ids: dict[str, str], how: str) -> None:
    scope = {"name+domain id": project_scope("demo", {"id": "default"}),
             "name+domain name": project_scope("demo", {"name": "Default"}),
             "id": {"project": {"id": project_ids["demo"]}}}[how]
    user_domain = {"name": "Default"} if how == "name+domain name" else None
    resp = await client.post("/v3/auth/tokens", json=v3_body("demo", scope=scope,
                                                             user_domain=user_domain))
    assert resp.status == 201, await resp.text()
    token_id = resp.headers["X-Subject-Token"]
    token = (await resp.json())["token"]
    assert token["methods"] == ["password"]
    assert token["user"]["name"] == "demo"
    assert token["user"]["domain"] == {"id": "default", "name": "Default"}
    assert token["user"]["password_expires_at"] is None
    assert token["project"] == {"id": project_ids["demo"], "name": "demo",
                                "domain": {"id": "default", "name": "Default"}}
    assert [r["name"] for r in token["roles"]] == ["member"]
    assert all(set(r) == {"id", "name"} for r in token["roles"])
    assert token["is_domain"] is False
    assert token["expires_at"].endswith("Z") and len(token["expires_at"]) == 27
    assert token["issued_at"].endswith("Z")
    assert len(token["audit_ids"]) == 1
    _check_v3_catalog(token["catalog"], project_ids["demo"])

    principal = await validate_token(pool, token_id)
    assert principal is not None and principal.project_name == "demo"
    assert principal.user_id == token["user"]["id"]


async def test_v3_user_by_id(client: TestClient, pool: asyncpg.Pool) -> None:
    user_id = await pool.fetchval("SELECT id FROM users WHERE name = 'alt'")
    resp = await client.post("/v3/auth/tokens", json=v3_body(
        "alt", user_id=user_id, scope=project_scope("alt")))
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["token"]["user"]["id"] == user_id


async def test_v3_admin_token_is_admin(client: TestClient, pool: asyncpg.Pool) -> None:
    token_id, token = await v3_token(client, "admin", "admin")
    assert sorted(r["name"] for r in token["roles"]) == ["admin", "member"]
    principal = await validate_token(pool, token_id)
    assert principal is not None and principal.is_admin
    demo = await validate_token(pool, (await v3_token(client, "demo", "demo"))[0])
    assert demo is not None and not demo.is_admin


async def test_v3_unscoped_and_default_project(client: TestClient,
                                               project_ids: dict[str, str]) -> None:
    _, token = await v3_token(client, "demo", None)
    assert not {"project", "roles", "catalog"} & set(token)
    assert token["user"]["domain"] == {"id": "default", "name": "Default"}
    # No scope at all: Keystone scopes to the user's default project.
    resp = await client.post("/v3/auth/tokens", json=v3_body("demo"))
    assert resp.status == 201
    assert (await resp.json())["token"]["project"]["id"] == project_ids["demo"]


async def test_v3_nocatalog(client: TestClient) -> None:
    resp = await client.post("/v3/auth/tokens?nocatalog",
                             json=v3_body("demo", scope=project_scope()))
    assert resp.status == 201
    token = (await resp.json())["token"]
    assert "catalog" not in token and token["project"]["name"] == "demo"


async def test_v3_rescope_with_token_method(client: TestClient, pool: asyncpg.Pool,
                                            project_ids: dict[str, str]) -> None:
    unscoped_id, unscoped = await v3_token(client, "admin", None)
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped_id}},
                     "scope": project_scope("admin")}}
    resp = await client.post("/v3/auth/tokens", json=body)
    assert resp.status == 201, await resp.text()
    scoped_id = resp.headers["X-Subject-Token"]
    scoped = (await resp.json())["token"]
    assert scoped_id != unscoped_id
    assert set(scoped["methods"]) == {"token", "password"}
    assert scoped["expires_at"] == unscoped["expires_at"]
    assert scoped["user"] == unscoped["user"]
    assert scoped["project"]["id"] == project_ids["admin"]
    assert scoped["audit_ids"][1] == unscoped["audit_ids"][0]
    # Revoking the scoped token leaves the one it came from usable (Tempest's rescope test).
    resp = await client.delete("/v3/auth/tokens", headers={"X-Auth-Token": scoped_id,
                                                           "X-Subject-Token": scoped_id})
    assert resp.status == 204
    assert await validate_token(pool, scoped_id) is None
    assert await validate_token(pool, unscoped_id) is not None
    resp = await client.post("/v3/auth/tokens", json=body)
    assert resp.status == 201


@pytest.mark.parametrize("case", ["wrong password", "unknown user", "unknown project",
                                  "not a member", "wrong user domain", "unknown project id"])
async def test_v3_bad_credentials_or_scope_get_401(client: TestClient, case: str) -> None:
    body = {
        "wrong password": v3_body("demo", "wrong", scope=project_scope()),
        "unknown user": v3_body("nobody", "demo", scope=project_scope()),
        "unknown project": v3_body("demo", scope=project_scope("nowhere")),
        "not a member": v3_body("demo", scope=project_scope("alt")),
        "wrong user domain": v3_body("demo", user_domain={"id": "other"},
                                     scope=project_scope()),
        "unknown project id": v3_body("demo", scope={"project": {"id": "f" * 32}}),
    }[case]
    resp = await client.post("/v3/auth/tokens", json=body)
    await assert_keystone_error(resp, 401)
    assert "X-Subject-Token" not in resp.headers


@pytest.mark.parametrize("case", ["wrong password", "unknown user", "unknown tenant",
                                  "not a member"])
async def test_v2_bad_credentials_or_tenant_get_401(client: TestClient, case: str) -> None:
    body = {
        "wrong password": v2_body("demo", "wrong", tenantName="demo"),
        "unknown user": v2_body("nobody", "demo", tenantName="demo"),
        "unknown tenant": v2_body("demo", tenantName="nowhere"),
        "not a member": v2_body("demo", tenantName="admin"),
    }[case]
    resp = await client.post("/v2.0/tokens", json=body)
    error = await assert_keystone_error(resp, 401)
    assert error["title"] == "Unauthorized"


async def test_disabled_user_cannot_log_in_and_loses_tokens(client: TestClient,
                                                            pool: asyncpg.Pool) -> None:
    token_id, _ = await v3_token(client)
    assert await validate_token(pool, token_id) is not None
    await pool.execute("UPDATE users SET enabled = false WHERE name = 'demo'")
    assert await validate_token(pool, token_id) is None
    resp = await client.post("/v3/auth/tokens", json=v3_body("demo", scope=project_scope()))
    await assert_keystone_error(resp, 401)


async def test_removed_membership_invalidates_scoped_token(client: TestClient,
                                                           pool: asyncpg.Pool) -> None:
    token_id, _ = await v3_token(client)
    await pool.execute("DELETE FROM role_assignments WHERE user_id = "
                       "(SELECT id FROM users WHERE name = 'demo')")
    assert await validate_token(pool, token_id) is None


@pytest.mark.parametrize("path,raw", [
    ("/v3/auth/tokens", b"{not json"),
    ("/v3/auth/tokens", b""),
    ("/v3/auth/tokens", b'{"auth": {}}'),
    ("/v3/auth/tokens", b'[1, 2]'),
    ("/v3/auth/tokens", b'{"auth": {"identity": {"methods": ["password"]}}}'),
    ("/v3/auth/tokens", b'{"auth": {"identity": {"methods": ["password"], "password": '
                        b'{"user": {"name": "demo", "password": 5, '
                        b'"domain": {"id": "default"}}}}}}'),
    # a user name needs its domain
    ("/v3/auth/tokens", b'{"auth": {"identity": {"methods": ["password"], "password": '
                        b'{"user": {"name": "demo", "password": "demo"}}}}}'),
    # a project name needs its domain
    ("/v3/auth/tokens", b'{"auth": {"identity": {"methods": ["password"], "password": '
                        b'{"user": {"name": "demo", "password": "demo", '
                        b'"domain": {"id": "default"}}}}, '
                        b'"scope": {"project": {"name": "demo"}}}}'),
    ("/v2.0/tokens", b"{not json"),
    ("/v2.0/tokens", b'{"auth": {"tenantName": "demo"}}'),
    ("/v2.0/tokens", b'{"auth": {"passwordCredentials": {"username": "demo"}}}'),
    ("/v2.0/tokens", b'{"auth": {"passwordCredentials": {"password": "demo"}}}'),
])
async def test_malformed_bodies_get_400(client: TestClient, path: str, raw: bytes) -> None:
    resp = await client.post(path, data=raw, headers={"Content-Type": "application/json"})
    error = await assert_keystone_error(resp, 400)
    assert error["title"] == "Bad Request"


async def test_unsupported_method_gets_401(client: TestClient) -> None:
    body = {"auth": {"identity": {"methods": ["totp"], "totp": {}}}}
    resp = await client.post("/v3/auth/tokens", json=body)
    await assert_keystone_error(resp, 401)


async def test_oversized_body_is_refused(client: TestClient) -> None:
    body = v3_body("demo", "x" * 100_000, scope=project_scope())
    resp = await client.post("/v3/auth/tokens", json=body)
    await assert_keystone_error(resp, 413)


async def test_unknown_path_gets_keystone_404(client: TestClient) -> None:
    resp = await client.get("/v3/nothing-here")
    await assert_keystone_error(resp, 404)


# --------------------------------------------------------------------------- validate / revoke

async def test_get_head_delete_v3_auth_tokens(client: TestClient, pool: asyncpg.Pool,
                                              project_ids: dict[str, str]) -> None:
    demo_id, demo = await v3_token(client, "demo", "demo")
    alt_id, _ = await v3_token(client, "alt", "alt")
    admin_id, _ = await v3_token(client, "admin", "admin")

    resp = await client.get("/v3/auth/tokens", headers={"X-Auth-Token": demo_id,
                                                        "X-Subject-Token": demo_id})
    assert resp.status == 200
    assert resp.headers["X-Subject-Token"] == demo_id
    again = (await resp.json())["token"]
    assert again == demo  # same body as at issue, role ids and catalog included
    resp = await client.head("/v3/auth/tokens", headers={"X-Auth-Token": demo_id,
                                                         "X-Subject-Token": demo_id})
    assert resp.status == 200
    # another user's token: only an admin may look
    resp = await client.get("/v3/auth/tokens", headers={"X-Auth-Token": alt_id,
                                                        "X-Subject-Token": demo_id})
    await assert_keystone_error(resp, 403)
    resp = await client.get("/v3/auth/tokens", headers={"X-Auth-Token": admin_id,
                                                        "X-Subject-Token": demo_id})
    assert resp.status == 200
    assert (await resp.json())["token"]["project"]["id"] == project_ids["demo"]
    # unknown subject: 404; unknown caller: 401
    resp = await client.get("/v3/auth/tokens", headers={"X-Auth-Token": admin_id,
                                                        "X-Subject-Token": "bogus"})
    await assert_keystone_error(resp, 404)
    resp = await client.head("/v3/auth/tokens", headers={"X-Auth-Token": admin_id,
                                                         "X-Subject-Token": "bogus"})
    assert resp.status == 404
    resp = await client.get("/v3/auth/tokens", headers={"X-Auth-Token": "bogus",
                                                        "X-Subject-Token": demo_id})
    await assert_keystone_error(resp, 401)
    # revoke
    resp = await client.delete("/v3/auth/tokens", headers={"X-Auth-Token": admin_id,
                                                           "X-Subject-Token": demo_id})
    assert resp.status == 204
    assert await validate_token(pool, demo_id) is None
    resp = await client.get("/v3/auth/tokens", headers={"X-Auth-Token": admin_id,
                                                        "X-Subject-Token": demo_id})
    await assert_keystone_error(resp, 404)


async def test_validate_token_valid_unknown_expired(client: TestClient,
                                                    pool: asyncpg.Pool) -> None:
    token_id, _ = await v3_token(client)
    principal = await validate_token(pool, token_id)
    assert principal is not None and principal.user_name == "demo"
    async with pool.acquire() as conn:  # a bare connection works as well as the pool
        assert await validate_token(conn, token_id) == principal
    assert await validate_token(pool, "not-a-token") is None
    assert await validate_token(pool, "") is None
    assert await validate_token(pool, None) is None
    assert await validate_token(pool, "x" * 10_000) is None
    await pool.execute("UPDATE tokens SET expires_at = now() - interval '1 second'")
    assert await validate_token(pool, token_id) is None


async def test_token_ttl_setting(pool: asyncpg.Pool) -> None:
    settings = IdentitySettings(token_ttl_s=90, token_purge_interval_s=0)
    async with TestClient(TestServer(create_identity_app(pool, settings))) as c:
        token_id, _ = await v3_token(c)
    row = await pool.fetchrow("SELECT expires_at - issued_at AS ttl FROM tokens")
    assert row["ttl"].total_seconds() == 90
    principal = await validate_token(pool, token_id)
    assert principal is not None


async def test_tokens_are_stored_only_as_sha256(client: TestClient, pool: asyncpg.Pool) -> None:
    token_id, _ = await v3_token(client)
    rows = await pool.fetch("SELECT token_hash, tokens::text AS whole FROM tokens")
    assert len(rows) == 1
    assert bytes(rows[0]["token_hash"]) == hashlib.sha256(token_id.encode()).digest()
    assert token_id not in rows[0]["whole"]


async def test_purge_expired_tokens(client: TestClient, pool: asyncpg.Pool) -> None:
    old, _ = await v3_token(client)
    new, _ = await v3_token(client)
    await pool.execute("UPDATE tokens SET issued_at = now() - interval '2 days', "
                       "expires_at = now() - interval '1 day' WHERE token_hash = $1",
                       hashlib.sha256(old.encode()).digest())
    assert await purge_expired_tokens(pool) == 1
    assert await pool.fetchval("SELECT count(*) FROM tokens") == 1
    assert await validate_token(pool, new) is not None


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_app_purges_expired_tokens_in_the_background(pool: asyncpg.Pool) -> None:
    async with TestClient(TestServer(create_identity_app(pool, SETTINGS))) as c:  # purge off
        await v3_token(c)
        await v3_token(c)
    await pool.execute("UPDATE tokens SET expires_at = now() - interval '1 second' "
                       "WHERE ctid = (SELECT min(ctid) FROM tokens)")
    assert await pool.fetchval("SELECT count(*) FROM tokens") == 2
    settings = IdentitySettings(token_purge_interval_s=3600)  # first round at start-up
    async with TestClient(TestServer(create_identity_app(pool, settings))):
        async def one_left() -> bool:
            return await pool.fetchval("SELECT count(*) FROM tokens") == 1
        await eventually(one_left)


# --------------------------------------------------------------------------- listings

async def test_v3_auth_catalog_and_projects(client: TestClient, pool: asyncpg.Pool,
                                            project_ids: dict[str, str]) -> None:
    token_id, token = await v3_token(client)
    headers = {"X-Auth-Token": token_id}
    resp = await client.get("/v3/auth/catalog", headers=headers)
    assert resp.status == 200
    assert (await resp.json())["catalog"] == token["catalog"]
    resp = await client.get("/v3/auth/projects", headers=headers)
    assert resp.status == 200
    projects = (await resp.json())["projects"]
    assert [(p["id"], p["name"], p["domain_id"]) for p in projects] == [
        (project_ids["demo"], "demo", "default")]
    user_id = token["user"]["id"]
    resp = await client.get(f"/v3/users/{user_id}/projects", headers=headers)
    assert resp.status == 200
    assert [p["name"] for p in (await resp.json())["projects"]] == ["demo"]
    # someone else's list: not for a member
    alt_user = await pool.fetchval("SELECT id FROM users WHERE name = 'alt'")
    resp = await client.get(f"/v3/users/{alt_user}/projects", headers=headers)
    await assert_keystone_error(resp, 403)
    # the catalog needs a scoped token
    unscoped_id, _ = await v3_token(client, "demo", None)
    resp = await client.get("/v3/auth/catalog", headers={"X-Auth-Token": unscoped_id})
    await assert_keystone_error(resp, 403)
    resp = await client.get("/v3/auth/projects", headers={"X-Auth-Token": unscoped_id})
    assert [p["name"] for p in (await resp.json())["projects"]] == ["demo"]


# --------------------------------------------------------------------------- management helpers

async def test_create_project_and_user(client: TestClient, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        project_id = await create_project(conn, "team", "A team")
        user_id = await create_user(conn, "carol", "c4rol-pw", "team")
        with pytest.raises(DuplicateName):
            await create_project(conn, "team")
        with pytest.raises(DuplicateName):
            await create_user(conn, "carol", "other", "team")
        with pytest.raises(ProjectNotFound):
            await create_user(conn, "dave", "pw", "no-such-project")
        with pytest.raises(RoleNotFound):
            await create_user(conn, "erin", "pw", "team", role="no-such-role")
    # failed creations left nothing behind
    assert await pool.fetchval(
        "SELECT count(*) FROM users WHERE name IN ('dave', 'erin')") == 0
    PASSWORDS["carol"] = "c4rol-pw"
    try:
        token_id, token = await v3_token(client, "carol", "team")
    finally:
        del PASSWORDS["carol"]
    assert token["user"]["id"] == user_id and token["project"]["id"] == project_id
    assert [r["name"] for r in token["roles"]] == ["member"]
    principal = await validate_token(pool, token_id)
    assert principal is not None and principal.project_id == project_id


# --------------------------------------------------------------------------- real clients

async def test_keystoneauth_v3_password(live_url: str, pool: asyncpg.Pool,
                                        project_ids: dict[str, str]) -> None:
    from keystoneauth1 import session
    from keystoneauth1.identity import v3

    def login() -> tuple[str, str, str | None]:
        auth = v3.Password(auth_url=f"{live_url}/v3", username="demo", password="demo",
                           user_domain_id="default", project_name="demo",
                           project_domain_id="default")
        sess = session.Session(auth=auth)
        return (sess.get_token(), sess.get_endpoint(service_type="compute", interface="public"),
                sess.get_project_id())

    token, endpoint, project_id = await asyncio.to_thread(login)
    assert endpoint == f"{COMPUTE}/v2/{project_ids['demo']}"
    assert project_id == project_ids["demo"]
    principal = await validate_token(pool, token)
    assert principal is not None and principal.project_name == "demo"


async def test_keystoneauth_v2_password(live_url: str, pool: asyncpg.Pool,
                                        project_ids: dict[str, str]) -> None:
    from keystoneauth1 import session
    from keystoneauth1.identity import v2

    def login() -> tuple[str, str]:
        auth = v2.Password(auth_url=f"{live_url}/v2.0", username="alt", password="alt",
                           tenant_name="alt")
        sess = session.Session(auth=auth)
        return sess.get_token(), sess.get_endpoint(service_type="compute", interface="public")

    token, endpoint = await asyncio.to_thread(login)
    assert endpoint == f"{COMPUTE}/v2/{project_ids['alt']}"
    principal = await validate_token(pool, token)
    assert principal is not None and principal.project_name == "alt"


async def test_keystoneauth_generic_password_discovers_v3(live_url: str,
                                                          project_ids: dict[str, str]) -> None:
    """The plugin openstackclient uses: GET / (300), pick v3, then authenticate."""
    from keystoneauth1 import session
    from keystoneauth1.identity import generic

    def login() -> tuple[str, str, Any]:
        auth = generic.Password(auth_url=live_url, username="admin", password="admin",
                                user_domain_name="Default", project_name="admin",
                                project_domain_name="Default")
        sess = session.Session(auth=auth)
        access = auth.get_access(sess)
        return (sess.get_endpoint(service_type="compute", interface="internal"),
                access.version, access.role_names)

    endpoint, version, roles = await asyncio.to_thread(login)
    assert endpoint == f"{COMPUTE}/v2/{project_ids['admin']}"
    assert version == "v3"
    assert sorted(roles) == ["admin", "member"]


async def test_keystoneauth_rejects_wrong_password(live_url: str) -> None:
    from keystoneauth1 import exceptions, session
    from keystoneauth1.identity import v3

    def login() -> None:
        auth = v3.Password(auth_url=f"{live_url}/v3", username="demo", password="nope",
                           user_domain_id="default", project_name="demo",
                           project_domain_id="default")
        session.Session(auth=auth).get_token()

    with pytest.raises(exceptions.Unauthorized):
        await asyncio.to_thread(login)


async def test_openstacksdk_authorizes(live_url: str, project_ids: dict[str, str]) -> None:
    import openstack.connection

    def login() -> tuple[str, str]:
        conn = openstack.connection.Connection(
            auth_url=live_url, username="demo", password="demo", project_name="demo",
            user_domain_name="Default", project_domain_name="Default",
            region_name="region-a")
        try:
            token = conn.authorize()
            return token, conn.current_project_id
        finally:
            conn.close()

    token, project_id = await asyncio.to_thread(login)
    assert token and project_id == project_ids["demo"]
