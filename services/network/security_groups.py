"""SQL for ``security_groups``, ``security_group_rules`` and each server's list of
groups (``servers.security_groups``): the ``default`` group every project gets,
groups and rules made and deleted by users, and the rules a server's groups add
up to.

Functions take a connection; the caller owns the transaction (READ COMMITTED,
PostgreSQL's default). Which rows are locked, and in which order, is what keeps
concurrent requests right:

* creating a group holds a per-project advisory lock while it counts the
  project's groups (maxSecurityGroups), so two creates never both take the last
  place;
* creating a rule locks its group row (and its source group's, in id order, so
  two rules naming each other's group cannot deadlock) while it looks for a
  duplicate and counts the group's rules (maxSecurityGroupRules);
* putting a group on a server holds the group row FOR SHARE until commit, and
  deleting a group deletes that row first, then takes the group off servers:
  whichever commits first, no live server is left naming a deleted group;
* renaming a group holds the per-project lock (a create or another rename
  cannot take the new name meanwhile), then the group row FOR UPDATE, and
  renames it on its servers in the same transaction: an add to a server, or a
  server create naming the group, either committed before (and is renamed) or
  looks the group up after, under its new name.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
import structlog

from shared.contracts.security_groups import (
    GroupInfo,
    RuleInfo,
    SecurityGroupQuotaExceeded,
    SecurityRule,
    ServerRules,
)
from shared.errors import BadRequest, NotFound, ServerNotFound

log = structlog.get_logger(__name__)

DEFAULT_GROUP = "default"
DEFAULT_DESCRIPTION = "default"

# Section 2.3.2 of the spec: ping and SSH from anywhere.
DEFAULT_RULES: tuple[SecurityRule, ...] = (
    SecurityRule(ip_protocol="icmp", from_port=-1, to_port=-1, cidr="0.0.0.0/0"),
    SecurityRule(ip_protocol="tcp", from_port=22, to_port=22, cidr="0.0.0.0/0"),
)

# pg_advisory_xact_lock(int4, int4): a class id of its own, apart from the API's
# quota locks and any other advisory lock.
_GROUPS_LOCK_CLASS = 0x73677270  # "sgrp"

_LOCK_PROJECT = "SELECT pg_advisory_xact_lock($1::int4, hashtext($2))"

_EXISTS = "SELECT true FROM security_groups WHERE project_id = $1 AND name = $2"

# A concurrent first use waits on the unique (project_id, name) for the other
# transaction and then inserts nothing: only the transaction that made the group
# adds its rules, so they are never doubled, and rules a user later removed are
# not brought back.
_INSERT_DEFAULT = """
INSERT INTO security_groups (project_id, name, description) VALUES ($1, $2, $3)
ON CONFLICT (project_id, name) DO NOTHING
RETURNING id"""

_INSERT_DEFAULT_RULE = """
INSERT INTO security_group_rules (parent_group_id, ip_protocol, from_port, to_port, cidr)
VALUES ($1, $2, $3, $4, $5::cidr)"""

_COUNT_GROUPS = "SELECT count(*) FROM security_groups WHERE project_id = $1"

_INSERT_GROUP = """
INSERT INTO security_groups (project_id, name, description) VALUES ($1, $2, $3)
ON CONFLICT (project_id, name) DO NOTHING
RETURNING id, project_id, name, description"""

_GROUP = """
SELECT id, project_id, name, description FROM security_groups WHERE id = $1 AND project_id = $2"""

_LOCK_GROUP_FOR_DELETE = """
SELECT id, name FROM security_groups WHERE id = $1 AND project_id = $2 FOR UPDATE"""

_DELETE_GROUP = "DELETE FROM security_groups WHERE id = $1"

_LOCK_GROUP_FOR_UPDATE = """
SELECT id, name, description FROM security_groups WHERE id = $1 AND project_id = $2 FOR UPDATE"""

_NAME_TAKEN = "SELECT true FROM security_groups WHERE project_id = $1 AND name = $2 AND id <> $3"

_UPDATE_GROUP = "UPDATE security_groups SET name = $2, description = $3 WHERE id = $1"

# Servers name their groups (``servers.security_groups``): a renamed group keeps
# its place in each live server's list under its new name, as Nova (which kept
# group ids) showed a rename everywhere. Rows are locked in id order first, so
# two such updates of many servers cannot deadlock.
_RENAME_ON_SERVERS = """
WITH named AS (
  SELECT id FROM servers
   WHERE project_id = $1 AND deleted_at IS NULL AND security_groups ? $2::text
   ORDER BY id FOR UPDATE)
UPDATE servers s
   SET security_groups = (SELECT jsonb_agg(CASE WHEN e.name = $2::text THEN $3::text
                                                ELSE e.name END ORDER BY e.n)
                            FROM jsonb_array_elements_text(s.security_groups)
                                 WITH ORDINALITY AS e(name, n)),
       updated_at = now()
  FROM named WHERE s.id = named.id
RETURNING s.id"""

# A deleted group is "effectively removed from all servers with which it was
# previously associated" (section 2.3.2).
_TAKE_OFF_SERVERS = """
UPDATE servers SET security_groups = security_groups - $2::text, updated_at = now()
 WHERE project_id = $1 AND deleted_at IS NULL AND security_groups ? $2::text
RETURNING id"""

_LOCK_GROUPS = """
SELECT id, project_id, name FROM security_groups
 WHERE id = ANY($1::bigint[]) AND project_id = $2
 ORDER BY id FOR UPDATE"""

_COUNT_RULES = "SELECT count(*) FROM security_group_rules WHERE parent_group_id = $1"

_DUPLICATE_RULE = """
SELECT id FROM security_group_rules
 WHERE parent_group_id = $1
   AND ip_protocol IS NOT DISTINCT FROM $2::text
   AND from_port IS NOT DISTINCT FROM $3::int
   AND to_port IS NOT DISTINCT FROM $4::int
   AND cidr IS NOT DISTINCT FROM $5::cidr
   AND group_id IS NOT DISTINCT FROM $6::bigint
 LIMIT 1"""

_INSERT_RULE = """
INSERT INTO security_group_rules (parent_group_id, ip_protocol, from_port, to_port, cidr, group_id)
VALUES ($1, $2, $3, $4, $5::cidr, $6)
RETURNING id"""

_RULE_SELECT = """
SELECT r.id, r.parent_group_id, r.ip_protocol, r.from_port, r.to_port, r.cidr::text AS cidr,
       r.group_id, src.name AS group_name, src.project_id AS group_project_id
  FROM security_group_rules r
  LEFT JOIN security_groups src ON src.id = r.group_id"""

_RULES_OF = f"{_RULE_SELECT} WHERE r.parent_group_id = ANY($1::bigint[]) ORDER BY r.id"

_RULE = f"{_RULE_SELECT} WHERE r.id = $1"

_DELETE_RULE = """
DELETE FROM security_group_rules r USING security_groups g
 WHERE r.id = $1 AND g.id = r.parent_group_id AND g.project_id = $2
RETURNING r.id"""

_HOLD_GROUP_BY_NAME = """
SELECT id FROM security_groups WHERE project_id = $1 AND name = $2 FOR SHARE"""

_ADD_TO_SERVER = """
UPDATE servers SET security_groups = security_groups || jsonb_build_array($3::text),
       updated_at = now()
 WHERE id = $1 AND project_id = $2 AND deleted_at IS NULL
   AND NOT security_groups ? $3::text
RETURNING id"""

_REMOVE_FROM_SERVER = """
UPDATE servers SET security_groups = security_groups - $3::text, updated_at = now()
 WHERE id = $1 AND project_id = $2 AND deleted_at IS NULL
   AND security_groups ? $3::text
RETURNING id"""

_LIVE_SERVER = """
SELECT id, project_id, security_groups FROM servers WHERE id = $1 AND deleted_at IS NULL"""

_LIVE_SERVER_OF = """
SELECT id FROM servers WHERE id = $1 AND project_id = $2 AND deleted_at IS NULL"""

_EFFECTIVE = """
SELECT DISTINCT r.ip_protocol, r.from_port, r.to_port, r.cidr::text AS cidr,
       src.name AS source_group
  FROM security_groups g
  JOIN security_group_rules r ON r.parent_group_id = g.id
  LEFT JOIN security_groups src ON src.id = r.group_id
 WHERE g.project_id = $1 AND g.name = ANY($2::text[])
 ORDER BY 1, 2, 3, 4, 5"""

# The fixed addresses of the project's live servers in a group: where a group
# rule lets traffic come from.
_MEMBER_ADDRESSES = """
SELECT DISTINCT host(p.address) AS address
  FROM ports p JOIN servers s ON s.id = p.server_id
 WHERE s.project_id = $1 AND s.deleted_at IS NULL AND s.security_groups ? $2::text
 ORDER BY 1"""


# ---- the default group ------------------------------------------------------

async def ensure_default(conn: asyncpg.Connection, project_id: str) -> bool:
    """Make the project's ``default`` group with its two rules unless it exists.

    Idempotent and safe to call concurrently; True when this call made it.
    """
    # Look first: an INSERT that meets the existing row still draws an id from
    # the group sequence, and group ids are shown to users.
    if await conn.fetchval(_EXISTS, project_id, DEFAULT_GROUP):
        return False
    group_id = await conn.fetchval(_INSERT_DEFAULT, project_id, DEFAULT_GROUP, DEFAULT_DESCRIPTION)
    if group_id is None:
        return False
    await conn.executemany(_INSERT_DEFAULT_RULE, [
        (group_id, r.ip_protocol, r.from_port, r.to_port, r.cidr) for r in DEFAULT_RULES])
    log.info("network.default_security_group_created", project_id=project_id, group_id=group_id)
    return True


# ---- groups -------------------------------------------------------------------

def _rule(row: asyncpg.Record) -> RuleInfo:
    return RuleInfo(**dict(row))


async def group_info(conn: asyncpg.Connection, project_id: str, group_id: int) -> GroupInfo | None:
    """The project's group ``group_id`` with its rules, or None."""
    row = await conn.fetchrow(_GROUP, group_id, project_id)
    if row is None:
        return None
    rules = await conn.fetch(_RULES_OF, [group_id])
    return GroupInfo(**dict(row), rules=tuple(_rule(r) for r in rules))


async def create_group(conn: asyncpg.Connection, project_id: str, name: str, description: str,
                       *, max_groups: int) -> GroupInfo:
    """Create the project's group ``name`` (no rules) within ``max_groups`` (-1: any).

    Raises:
        BadRequest: the project has a group of that name (Nova's 400).
        SecurityGroupQuotaExceeded: the project has ``max_groups`` groups.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("create_group must run inside a transaction")
    await conn.execute(_LOCK_PROJECT, _GROUPS_LOCK_CLASS, project_id)
    if await conn.fetchval(_EXISTS, project_id, name):
        raise BadRequest(f"Security group {name} already exists")
    if max_groups >= 0 and await conn.fetchval(_COUNT_GROUPS, project_id) >= max_groups:
        raise SecurityGroupQuotaExceeded("Quota exceeded, too many security groups.",
                                         details=f"The project may have at most {max_groups} "
                                                 "security groups, the default one included.")
    row = await conn.fetchrow(_INSERT_GROUP, project_id, name, description)
    if row is None:  # the default group, made by a first use that did not lock
        raise BadRequest(f"Security group {name} already exists")
    log.info("network.security_group_created", project_id=project_id, group_id=row["id"],
             name=name)
    return GroupInfo(**dict(row))


async def delete_group(conn: asyncpg.Connection, project_id: str, group_id: int) -> list[UUID]:
    """Delete the project's group, its rules and the rules naming it as source, and
    take it off every live server; the ids of those servers.

    Raises:
        NotFound: the project has no such group.
        BadRequest: it is the ``default`` group, which is never deleted.
    """
    row = await conn.fetchrow(_LOCK_GROUP_FOR_DELETE, group_id, project_id)
    if row is None:
        raise NotFound(f"Security group {group_id} not found.")
    if row["name"] == DEFAULT_GROUP:
        raise BadRequest(f"Unable to delete system group '{DEFAULT_GROUP}'")
    # Delete first: an add of this group to a server holds the row FOR SHARE
    # until it commits, so once this has the row, no add is in flight and the
    # update below sees every server that got the group.
    await conn.execute(_DELETE_GROUP, group_id)
    servers = [r["id"] for r in await conn.fetch(_TAKE_OFF_SERVERS, project_id, row["name"])]
    log.info("network.security_group_deleted", project_id=project_id, group_id=group_id,
             name=row["name"], servers=[str(s) for s in servers])
    return servers


async def update_group(conn: asyncpg.Connection, project_id: str, group_id: int, name: str,
                       description: str | None) -> tuple[GroupInfo, list[UUID]]:
    """Rename the project's group and set its description (None: keep it), and
    rename it on every live server that has it; the group with its rules, and
    the ids of those servers. The same update again changes nothing.

    Raises:
        NotFound: the project has no such group.
        BadRequest: it is the ``default`` group (Nova's "Unable to update system
            group"), or another group of the project is called ``name``.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("update_group must run inside a transaction")
    await conn.execute(_LOCK_PROJECT, _GROUPS_LOCK_CLASS, project_id)
    row = await conn.fetchrow(_LOCK_GROUP_FOR_UPDATE, group_id, project_id)
    if row is None:
        raise NotFound(f"Security group {group_id} not found.")
    if row["name"] == DEFAULT_GROUP:
        raise BadRequest(f"Unable to update system group '{DEFAULT_GROUP}'")
    if await conn.fetchval(_NAME_TAKEN, project_id, name, group_id):
        raise BadRequest(f"Security group {name} already exists")
    description = row["description"] if description is None else description
    servers: list[UUID] = []
    if (name, description) != (row["name"], row["description"]):
        await conn.execute(_UPDATE_GROUP, group_id, name, description)
    if name != row["name"]:
        servers = [r["id"] for r in await conn.fetch(_RENAME_ON_SERVERS, project_id,
                                                     row["name"], name)]
    log.info("network.security_group_updated", project_id=project_id, group_id=group_id,
             old_name=row["name"], name=name, servers=[str(s) for s in servers])
    info = await group_info(conn, project_id, group_id)
    assert info is not None  # locked above
    return info, servers


# ---- rules --------------------------------------------------------------------

async def create_rule(conn: asyncpg.Connection, project_id: str, parent_group_id: int, *,
                      ip_protocol: str | None, from_port: int | None, to_port: int | None,
                      cidr: str | None, group_id: int | None, max_rules: int) -> RuleInfo:
    """Add an already validated rule to the project's group ``parent_group_id``.

    Raises:
        NotFound: the parent or the source group is not the project's.
        BadRequest: the group has this very rule already.
        SecurityGroupQuotaExceeded: the group has ``max_rules`` rules (-1: any).
    """
    if not conn.is_in_transaction():
        raise RuntimeError("create_rule must run inside a transaction")
    wanted = {parent_group_id} | ({group_id} if group_id is not None else set())
    locked = {r["id"] for r in await conn.fetch(_LOCK_GROUPS, sorted(wanted), project_id)}
    if parent_group_id not in locked:
        raise NotFound(f"Security group {parent_group_id} not found.")
    if group_id is not None and group_id not in locked:
        raise NotFound(f"Security group {group_id} not found.")
    if await conn.fetchval(_DUPLICATE_RULE, parent_group_id, ip_protocol, from_port, to_port,
                           cidr, group_id) is not None:
        raise BadRequest(f"This rule already exists in group {parent_group_id}")
    if max_rules >= 0 and await conn.fetchval(_COUNT_RULES, parent_group_id) >= max_rules:
        raise SecurityGroupQuotaExceeded(
            "Quota exceeded, too many security group rules.",
            details=f"A security group may have at most {max_rules} rules.")
    rule_id = await conn.fetchval(_INSERT_RULE, parent_group_id, ip_protocol, from_port, to_port,
                                  cidr, group_id)
    log.info("network.security_group_rule_created", project_id=project_id,
             group_id=parent_group_id, rule_id=rule_id)
    return _rule(await conn.fetchrow(_RULE, rule_id))


async def delete_rule(conn: asyncpg.Connection, project_id: str, rule_id: int) -> None:
    """Delete a rule of one of the project's groups; NotFound otherwise."""
    if await conn.fetchval(_DELETE_RULE, rule_id, project_id) is None:
        raise NotFound(f"Security group with rule {rule_id} not found.")
    log.info("network.security_group_rule_deleted", project_id=project_id, rule_id=rule_id)


# ---- servers ------------------------------------------------------------------

async def _held_group(conn: asyncpg.Connection, project_id: str, name: str) -> None:
    if await conn.fetchval(_HOLD_GROUP_BY_NAME, project_id, name) is None:
        raise NotFound(f"Security group {name} not found for project {project_id}.")


async def _live_server(conn: asyncpg.Connection, project_id: str, server_id: UUID) -> None:
    if await conn.fetchval(_LIVE_SERVER_OF, server_id, project_id) is None:
        raise ServerNotFound(server_id)


async def add_to_server(conn: asyncpg.Connection, project_id: str, server_id: UUID,
                        name: str) -> None:
    """Put the project's group ``name`` on the server (Nova's add_to_instance).

    Raises:
        NotFound: no such group in the project, or no such live server.
        BadRequest: the server has the group already.
    """
    await _held_group(conn, project_id, name)
    if await conn.fetchval(_ADD_TO_SERVER, server_id, project_id, name) is None:
        await _live_server(conn, project_id, server_id)
        raise BadRequest(f"Security group {name} is already associated with the instance "
                         f"{server_id}")
    log.info("network.security_group_added", server_id=str(server_id), group=name)


async def remove_from_server(conn: asyncpg.Connection, project_id: str, server_id: UUID,
                             name: str) -> None:
    """Take the project's group ``name`` off the server (Nova's remove_from_instance).

    Raises:
        NotFound: no such group in the project, or no such live server.
        BadRequest: the server does not have the group.
    """
    await _held_group(conn, project_id, name)
    if await conn.fetchval(_REMOVE_FROM_SERVER, server_id, project_id, name) is None:
        await _live_server(conn, project_id, server_id)
        raise BadRequest(f"Security group {name} is not associated with the instance "
                         f"{server_id}")
    log.info("network.security_group_removed", server_id=str(server_id), group=name)


async def effective_rules(conn: asyncpg.Connection, project_id: str,
                          group_names: Sequence[str]) -> list[SecurityRule]:
    """Every distinct rule of the project's groups named ``group_names``.

    A name with no group behind it adds nothing: a deleted group is taken off
    the servers it was on (section 2.3.2).
    """
    rows = await conn.fetch(_EFFECTIVE, project_id, list(group_names))
    return [SecurityRule(**dict(r)) for r in rows]


async def server_rules(conn: asyncpg.Connection, server_id: UUID) -> ServerRules:
    """What the live server lets in: the distinct rules of its groups, each group
    rule with the addresses of the source group's servers. NotFound if not live."""
    row = await conn.fetchrow(_LIVE_SERVER, server_id)
    if row is None:
        raise ServerNotFound(server_id)
    groups = tuple(row["security_groups"])
    rules = []
    members: dict[str, tuple[str, ...]] = {}
    for rule in await effective_rules(conn, row["project_id"], groups):
        if rule.source_group is not None:
            if rule.source_group not in members:
                members[rule.source_group] = tuple(
                    r["address"] for r in await conn.fetch(_MEMBER_ADDRESSES, row["project_id"],
                                                           rule.source_group))
            rule = SecurityRule(ip_protocol=rule.ip_protocol, from_port=rule.from_port,
                                to_port=rule.to_port, source_group=rule.source_group,
                                source_addresses=members[rule.source_group])
        rules.append(rule)
    return ServerRules(server_id=server_id, project_id=row["project_id"], groups=groups,
                       rules=tuple(rules))
