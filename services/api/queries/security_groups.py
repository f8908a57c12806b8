"""Reads of ``security_groups`` and ``security_group_rules`` for the API.

Every write goes through the network service (``shared.contracts.security_groups``);
the API only reads here, and, while it inserts servers, holds the groups they
name (``hold_named``) so that none of them is deleted before the servers commit.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

_GROUP_COLUMNS = "id, project_id, name, description, created_at"

_LIST = f"SELECT {_GROUP_COLUMNS} FROM security_groups WHERE project_id = $1 ORDER BY id"

_GET = f"SELECT {_GROUP_COLUMNS} FROM security_groups WHERE id = $1 AND project_id = $2"

_RULES_OF = """
SELECT r.id, r.parent_group_id, r.ip_protocol, r.from_port, r.to_port, r.cidr::text AS cidr,
       r.group_id, src.name AS group_name, src.project_id AS group_project_id, r.created_at
  FROM security_group_rules r
  LEFT JOIN security_groups src ON src.id = r.group_id
 WHERE r.parent_group_id = ANY($1::bigint[])
 ORDER BY r.id"""

_DEFAULT_EXISTS = """
SELECT EXISTS (SELECT 1 FROM security_groups WHERE project_id = $1 AND name = 'default')"""

# FOR SHARE: a concurrent delete of one of these groups waits until the
# servers naming it are committed, and then takes it off them as well.
_HOLD_NAMED = """
SELECT name FROM security_groups WHERE project_id = $1 AND name = ANY($2::text[]) FOR SHARE"""

_COUNT = "SELECT count(*) FROM security_groups WHERE project_id = $1"

_NAMES_AND_IDS = """
SELECT id, name FROM security_groups
 WHERE project_id = $1 AND (name = ANY($2::text[]) OR id = ANY($3::bigint[]))"""


async def list_for_project(conn: asyncpg.Connection, project_id: str) -> list[asyncpg.Record]:
    """The project's groups, oldest first."""
    return await conn.fetch(_LIST, project_id)


async def get(conn: asyncpg.Connection, project_id: str, group_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(_GET, group_id, project_id)


async def rules_of(conn: asyncpg.Connection,
                   group_ids: Sequence[int]) -> dict[int, list[asyncpg.Record]]:
    """The rules of each group, by group id (every id present, maybe with no rules)."""
    out: dict[int, list[asyncpg.Record]] = {gid: [] for gid in group_ids}
    for row in await conn.fetch(_RULES_OF, list(group_ids)):
        out[row["parent_group_id"]].append(row)
    return out


async def default_exists(conn: asyncpg.Connection, project_id: str) -> bool:
    return await conn.fetchval(_DEFAULT_EXISTS, project_id)


async def hold_named(conn: asyncpg.Connection, project_id: str, names: Sequence[str]) -> set[str]:
    """Those of ``names`` that are groups of the project, locked FOR SHARE until the
    caller's transaction ends."""
    return {r["name"] for r in await conn.fetch(_HOLD_NAMED, project_id, list(names))}


async def count(conn: asyncpg.Connection, project_id: str) -> int:
    return await conn.fetchval(_COUNT, project_id)


async def names_for(conn: asyncpg.Connection, project_id: str, refs: Sequence[str]) -> list[str]:
    """The group names ``refs`` stand for, in order, without repeats: each ref is a
    group's name, or the id of one of the project's groups (the openstack CLI,
    which finds groups on the network endpoint, sends the id in ``name``).

    A ref that names a group is that group, even when it is also some group's id
    (a group may be called "12"); a ref that is neither is kept as given, for the
    caller to report as unknown.
    """
    ids = [int(r) for r in refs if r.isascii() and r.isdigit() and len(r) < 19]
    rows = await conn.fetch(_NAMES_AND_IDS, project_id, list(refs), ids)
    names = {r["name"] for r in rows}
    by_id = {str(r["id"]): r["name"] for r in rows}
    resolved = [ref if ref in names else by_id.get(ref.lstrip("0") or "0", ref) for ref in refs]
    return list(dict.fromkeys(resolved))
