"""Domains, projects, users, roles and role assignments: SQL and the functions on it.

Every function takes an asyncpg connection (or pool) and leaves transactions to
the caller. :func:`create_project` and :func:`create_user` are the management
helpers the CLI calls; the rest serve authentication.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import asyncpg
import msgspec

from services.api.identity.errors import DuplicateName, ProjectNotFound, RoleNotFound
from services.api.identity.passwords import hash_password_async

DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN_NAME = "Default"

# asyncpg.Pool and asyncpg.Connection both offer fetch/fetchrow/fetchval/execute.
Executor = Any


class Project(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    domain_id: str
    domain_name: str
    description: str
    enabled: bool


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    domain_id: str
    domain_name: str
    password_hash: str
    enabled: bool
    default_project_id: str | None
    email: str | None


class Role(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str


def new_id() -> str:
    """A Keystone-style id: uuid4 as 32 hex digits."""
    return uuid.uuid4().hex


# --- SQL -------------------------------------------------------------------

_ENSURE_DOMAIN = """
INSERT INTO domains (id, name, description) VALUES ($1, $2, $3)
ON CONFLICT (id) DO NOTHING"""

_ENSURE_ROLE = """
WITH ins AS (
    INSERT INTO roles (id, name) VALUES ($1, $2)
    ON CONFLICT (name) DO NOTHING RETURNING id)
SELECT id FROM ins UNION ALL SELECT id FROM roles WHERE name = $2
LIMIT 1"""

_INSERT_PROJECT = """
INSERT INTO projects (id, name, domain_id, description) VALUES ($1, $2, $3, $4)
ON CONFLICT (domain_id, name) DO NOTHING RETURNING id"""

_INSERT_USER = """
INSERT INTO users (id, name, domain_id, password_hash, default_project_id, email)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (domain_id, name) DO NOTHING RETURNING id"""

_SET_PASSWORD_HASH = "UPDATE users SET password_hash = $2 WHERE id = $1"

_ASSIGN_ROLE = """
INSERT INTO role_assignments (user_id, project_id, role_id)
SELECT $1, $2, r.id FROM roles r WHERE r.name = $3
ON CONFLICT DO NOTHING
RETURNING role_id"""

_ROLE_EXISTS = "SELECT id FROM roles WHERE name = $1"

_PROJECT_COLUMNS = """
SELECT p.id, p.name, p.domain_id, d.name AS domain_name, p.description,
       p.enabled AND d.enabled AS enabled
FROM projects p JOIN domains d ON d.id = p.domain_id"""

_PROJECT_BY_ID = _PROJECT_COLUMNS + " WHERE p.id = $1"

_ALL_PROJECTS = _PROJECT_COLUMNS + """
WHERE ($1::text IS NULL OR p.name = $1) AND ($2::text IS NULL OR d.id = $2)
ORDER BY p.name, p.id"""

# Exactly one of $2 (domain id) and $3 (domain name) is given.
_PROJECT_BY_NAME = _PROJECT_COLUMNS + """
WHERE p.name = $1 AND ($2::text IS NULL OR d.id = $2) AND ($3::text IS NULL OR d.name = $3)"""

_USER_PROJECTS = _PROJECT_COLUMNS + """
WHERE p.id IN (SELECT project_id FROM role_assignments WHERE user_id = $1)
ORDER BY p.name"""

_USER_COLUMNS = """
SELECT u.id, u.name, u.domain_id, d.name AS domain_name, u.password_hash,
       u.enabled AND d.enabled AS enabled, u.default_project_id, u.email
FROM users u JOIN domains d ON d.id = u.domain_id"""

_USER_BY_ID = _USER_COLUMNS + " WHERE u.id = $1"

_USER_BY_NAME = _USER_COLUMNS + """
WHERE u.name = $1 AND ($2::text IS NULL OR d.id = $2) AND ($3::text IS NULL OR d.name = $3)"""

_PROJECT_ROLES = """
SELECT r.id, r.name FROM role_assignments a JOIN roles r ON r.id = a.role_id
WHERE a.user_id = $1 AND a.project_id = $2
ORDER BY r.name"""

_ROLES_BY_NAME = "SELECT id, name FROM roles WHERE name = ANY($1::text[]) ORDER BY name"


# --- writes ------------------------------------------------------------------

async def ensure_domain(conn: Executor, domain_id: str, name: str, description: str = "") -> None:
    """Create the domain unless one with this id exists."""
    await conn.execute(_ENSURE_DOMAIN, domain_id, name, description)


async def ensure_role(conn: Executor, name: str) -> str:
    """Create the role unless it exists; return its id either way."""
    role_id: str = await conn.fetchval(_ENSURE_ROLE, new_id(), name)
    return role_id


async def insert_project(conn: Executor, name: str, *, domain_id: str = DEFAULT_DOMAIN_ID,
                         description: str = "") -> str | None:
    """Insert a project; return its id, or None if the name is taken in the domain."""
    project_id: str | None = await conn.fetchval(_INSERT_PROJECT, new_id(), name, domain_id,
                                                 description)
    return project_id


async def insert_user(conn: Executor, name: str, password_hash: str, *,
                      domain_id: str = DEFAULT_DOMAIN_ID, default_project_id: str | None = None,
                      email: str | None = None) -> str | None:
    """Insert a user; return its id, or None if the name is taken in the domain."""
    user_id: str | None = await conn.fetchval(_INSERT_USER, new_id(), name, domain_id,
                                              password_hash, default_project_id, email)
    return user_id


async def set_password_hash(conn: Executor, user_id: str, password_hash: str) -> None:
    await conn.execute(_SET_PASSWORD_HASH, user_id, password_hash)


async def assign_role(conn: Executor, user_id: str, project_id: str, role_name: str) -> None:
    """Give the user the role on the project; a no-op if already given.

    Raises:
        RoleNotFound: no role has that name.
    """
    if await conn.fetchval(_ASSIGN_ROLE, user_id, project_id, role_name) is None:
        if await conn.fetchval(_ROLE_EXISTS, role_name) is None:
            raise RoleNotFound(role_name)


async def create_project(conn: Executor, name: str, description: str = "") -> str:
    """Create a project in the Default domain and return its id.

    Raises:
        DuplicateName: the domain already has a project of that name.
    """
    project_id = await insert_project(conn, name, description=description)
    if project_id is None:
        raise DuplicateName("project", name)
    return project_id


async def create_user(conn: asyncpg.Connection, name: str, password: str, project_name: str,
                      role: str = "member", *, email: str | None = None) -> str:
    """Create a user in the Default domain with ``role`` on ``project_name`` (also
    its default project) and return the user's id. Runs in one transaction
    (a savepoint if the caller already opened one).

    Raises:
        ProjectNotFound: no project of that name in the Default domain.
        RoleNotFound: no role of that name.
        DuplicateName: the domain already has a user of that name.
    """
    password_hash = await hash_password_async(password)
    async with conn.transaction():
        project = await find_project_by_name(conn, project_name, domain_id=DEFAULT_DOMAIN_ID)
        if project is None:
            raise ProjectNotFound(project_name)
        user_id = await insert_user(conn, name, password_hash, default_project_id=project.id,
                                    email=email)
        if user_id is None:
            raise DuplicateName("user", name)
        await assign_role(conn, user_id, project.id, role)
    return user_id


# --- reads -------------------------------------------------------------------

def _project(row: asyncpg.Record | None) -> Project | None:
    return None if row is None else Project(**dict(row))


def _user(row: asyncpg.Record | None) -> User | None:
    return None if row is None else User(**dict(row))


async def find_project_by_id(conn: Executor, project_id: str) -> Project | None:
    return _project(await conn.fetchrow(_PROJECT_BY_ID, project_id))


async def find_project_by_name(conn: Executor, name: str, *, domain_id: str | None = None,
                               domain_name: str | None = None) -> Project | None:
    """The project called ``name`` in the domain given by id or by name."""
    if domain_id is None and domain_name is None:
        raise ValueError("a domain id or name is required")
    return _project(await conn.fetchrow(_PROJECT_BY_NAME, name, domain_id, domain_name))


async def find_user_by_id(conn: Executor, user_id: str) -> User | None:
    return _user(await conn.fetchrow(_USER_BY_ID, user_id))


async def find_user_by_name(conn: Executor, name: str, *, domain_id: str | None = None,
                            domain_name: str | None = None) -> User | None:
    """The user called ``name`` in the domain given by id or by name."""
    if domain_id is None and domain_name is None:
        raise ValueError("a domain id or name is required")
    return _user(await conn.fetchrow(_USER_BY_NAME, name, domain_id, domain_name))


async def project_roles(conn: Executor, user_id: str, project_id: str) -> list[Role]:
    """The roles the user holds on the project, by name; empty means no access."""
    return [Role(id=r["id"], name=r["name"])
            for r in await conn.fetch(_PROJECT_ROLES, user_id, project_id)]


async def roles_by_name(conn: Executor, names: Iterable[str]) -> list[Role]:
    return [Role(id=r["id"], name=r["name"])
            for r in await conn.fetch(_ROLES_BY_NAME, list(names))]


async def user_projects(conn: Executor, user_id: str) -> list[Project]:
    """The projects the user holds any role on, by name."""
    return [Project(**dict(r)) for r in await conn.fetch(_USER_PROJECTS, user_id)]


async def all_projects(conn: Executor, *, name: str | None = None,
                       domain_id: str | None = None) -> list[Project]:
    """Every project (of one name, of one domain, when given), by name."""
    return [Project(**dict(r)) for r in await conn.fetch(_ALL_PROJECTS, name, domain_id)]
