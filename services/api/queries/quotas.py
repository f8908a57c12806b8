"""SQL for per-project limits: ``project_quotas``, ``project_rate_limits``, the
per-project quota lock, the usage counted from live servers and volumes, and the
shared rate-limit buckets."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

import asyncpg

# The project's quota lock is its project_usage row (migration 0017): taking it
# makes the row if the project has none yet, and answers the usage it guards.
_LOCK = """
INSERT INTO project_usage (project_id) VALUES ($1)
ON CONFLICT (project_id) DO UPDATE SET project_id = EXCLUDED.project_id
RETURNING instances, cores, ram_mb"""

# Kept by the trigger of migration 0017 as servers are created and deleted.
_USAGE = """
SELECT coalesce(max(instances), 0) AS instances, coalesce(max(cores), 0) AS cores,
       coalesce(max(ram_mb), 0) AS ram_mb
  FROM project_usage WHERE project_id = $1"""

_VOLUME_USAGE = """
SELECT count(*) AS volumes, coalesce(sum(size_gb), 0) AS gigabytes
  FROM volumes
 WHERE project_id = $1 AND deleted_at IS NULL"""

_SECURITY_GROUPS_USED = "SELECT count(*) FROM security_groups WHERE project_id = $1"

_LIVE_SERVERS = """
SELECT id FROM servers WHERE project_id = $1 AND id = ANY($2::uuid[]) AND deleted_at IS NULL"""

_QUOTAS = "SELECT resource, hard_limit FROM project_quotas WHERE project_id = $1"

_SET_QUOTA = """
INSERT INTO project_quotas (project_id, resource, hard_limit) VALUES ($1, $2, $3)
ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit,
                                                 updated_at = now()"""

_CLEAR_QUOTA = "DELETE FROM project_quotas WHERE project_id = $1 AND resource = $2"

_PROJECT_EXISTS = "SELECT EXISTS (SELECT 1 FROM projects WHERE id = $1)"

_RATE_LIMITS = """
SELECT verb, uri, regex, value, unit FROM project_rate_limits
 WHERE project_id = $1 ORDER BY created_at, verb, uri"""

_SET_RATE_LIMIT = """
INSERT INTO project_rate_limits (project_id, verb, uri, regex, value, unit)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (project_id, verb, uri) DO UPDATE SET regex = excluded.regex,
       value = excluded.value, unit = excluded.unit"""

_CLEAR_RATE_LIMITS = "DELETE FROM project_rate_limits WHERE project_id = $1"

# The functions of migration 0014 (their arithmetic is there).
_RATE_CHARGE = """
SELECT verb, uri, retry_after
  FROM rate_limit_charge($1, $2::text[], $3::text[], $4::float8[], $5::int[], $6)"""

_RATE_STATUS = """
SELECT verb, uri, remaining, next_available
  FROM rate_limit_status($1, $2::text[], $3::text[], $4::float8[], $5::int[], $6)"""


async def lock_project(conn: asyncpg.Connection, project_id: str) -> asyncpg.Record:
    """Serialise quota checks of one project until the caller's transaction ends;
    answers the project's server usage as of the lock (``usage``'s fields)."""
    return await conn.fetchrow(_LOCK, project_id)


async def usage(conn: asyncpg.Connection, project_id: str) -> asyncpg.Record:
    """``instances``, ``cores`` and ``ram_mb`` of the project's live (not deleted) servers
    (one row read: migration 0017 keeps them)."""
    return await conn.fetchrow(_USAGE, project_id)


async def volume_usage(conn: asyncpg.Connection, project_id: str) -> asyncpg.Record:
    """``volumes`` and ``gigabytes`` of the project's live (not deleted) volumes,
    whatever their status: an error volume holds its quota until deleted, as in Cinder."""
    return await conn.fetchrow(_VOLUME_USAGE, project_id)


async def security_groups_used(conn: asyncpg.Connection, project_id: str) -> int:
    return await conn.fetchval(_SECURITY_GROUPS_USED, project_id)


async def live_server_ids(conn: asyncpg.Connection, project_id: str,
                          ids: Iterable[UUID]) -> set[UUID]:
    """Those of ``ids`` that are live servers of the project."""
    return {r["id"] for r in await conn.fetch(_LIVE_SERVERS, project_id, list(ids))}


async def quotas(conn: asyncpg.Connection, project_id: str) -> dict[str, int]:
    """The project's own quotas (only those set)."""
    return {r["resource"]: r["hard_limit"] for r in await conn.fetch(_QUOTAS, project_id)}


async def set_quota(conn: asyncpg.Connection, project_id: str, resource: str,
                    hard_limit: int | None) -> None:
    """Set the project's quota for ``resource``; None goes back to the default."""
    if hard_limit is None:
        await conn.execute(_CLEAR_QUOTA, project_id, resource)
    else:
        await conn.execute(_SET_QUOTA, project_id, resource, hard_limit)


async def project_exists(conn: asyncpg.Connection, project_id: str) -> bool:
    """Whether identity knows the project (its quotas reference it)."""
    return await conn.fetchval(_PROJECT_EXISTS, project_id)


async def rate_limits(conn: asyncpg.Connection, project_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(_RATE_LIMITS, project_id)


async def set_rate_limit(conn: asyncpg.Connection, project_id: str, *, verb: str, uri: str,
                         regex: str, value: int, unit: str) -> None:
    await conn.execute(_SET_RATE_LIMIT, project_id, verb, uri, regex, value, unit)


async def clear_rate_limits(conn: asyncpg.Connection, project_id: str) -> int:
    """Delete the project's own rate limits; return how many there were."""
    status = await conn.execute(_CLEAR_RATE_LIMITS, project_id)
    return int(status.split()[-1])


async def rate_charge(conn: asyncpg.Pool | asyncpg.Connection, project_id: str,
                      rules: list[tuple[str, str, int, int]], now: datetime | None = None
                      ) -> list[asyncpg.Record]:
    """Charge a request to each (verb, uri, seconds, value) or to none: the spent ones
    with their ``retry_after`` (empty when charged). One statement."""
    verbs, uris, seconds, values = (list(col) for col in zip(*rules, strict=True))
    return await conn.fetch(_RATE_CHARGE, project_id, verbs, uris, seconds, values, now)


async def rate_status(conn: asyncpg.Pool | asyncpg.Connection, project_id: str,
                      rules: list[tuple[str, str, int, int]], now: datetime | None = None
                      ) -> list[asyncpg.Record]:
    """Each (verb, uri, seconds, value)'s ``remaining`` and ``next_available``, in order."""
    if not rules:
        return []
    verbs, uris, seconds, values = (list(col) for col in zip(*rules, strict=True))
    return await conn.fetch(_RATE_STATUS, project_id, verbs, uris, seconds, values, now)
