"""SQL for ``security_groups`` and ``security_group_rules``: the ``default`` group
every project gets, and the rules a server's groups add up to.

Functions take a connection; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import msgspec
import structlog

log = structlog.get_logger(__name__)

DEFAULT_GROUP = "default"
DEFAULT_DESCRIPTION = "default"


class SecurityRule(msgspec.Struct, frozen=True, kw_only=True):
    """One rule as a server's traffic filter sees it: what is let in, from where.

    Either ``cidr`` or ``source_group`` (the name of a group of the same project
    whose servers may send) names the source.
    """

    ip_protocol: str | None
    from_port: int | None
    to_port: int | None
    cidr: str | None = None
    source_group: str | None = None


# Section 2.3.2 of the spec: ping and SSH from anywhere.
DEFAULT_RULES: tuple[SecurityRule, ...] = (
    SecurityRule(ip_protocol="icmp", from_port=-1, to_port=-1, cidr="0.0.0.0/0"),
    SecurityRule(ip_protocol="tcp", from_port=22, to_port=22, cidr="0.0.0.0/0"),
)

_EXISTS = "SELECT true FROM security_groups WHERE project_id = $1 AND name = $2"

# A concurrent first use waits on the unique (project_id, name) for the other
# transaction and then inserts nothing: only the transaction that made the group
# adds its rules, so they are never doubled, and rules a user later removed are
# not brought back.
_INSERT_DEFAULT = """
INSERT INTO security_groups (project_id, name, description) VALUES ($1, $2, $3)
ON CONFLICT (project_id, name) DO NOTHING
RETURNING id"""

_INSERT_RULE = """
INSERT INTO security_group_rules (parent_group_id, ip_protocol, from_port, to_port, cidr)
VALUES ($1, $2, $3, $4, $5::cidr)"""

_EFFECTIVE = """
SELECT DISTINCT r.ip_protocol, r.from_port, r.to_port, r.cidr::text AS cidr,
       src.name AS source_group
  FROM security_groups g
  JOIN security_group_rules r ON r.parent_group_id = g.id
  LEFT JOIN security_groups src ON src.id = r.group_id
 WHERE g.project_id = $1 AND g.name = ANY($2::text[])
 ORDER BY 1, 2, 3, 4, 5"""


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
    await conn.executemany(_INSERT_RULE, [
        (group_id, r.ip_protocol, r.from_port, r.to_port, r.cidr) for r in DEFAULT_RULES])
    log.info("network.default_security_group_created", project_id=project_id, group_id=group_id)
    return True


async def effective_rules(conn: asyncpg.Connection, project_id: str,
                          group_names: Sequence[str]) -> list[SecurityRule]:
    """Every distinct rule of the project's groups named ``group_names``.

    A name with no group behind it adds nothing: a deleted group is taken off
    the servers it was on (section 2.3.2).
    """
    rows = await conn.fetch(_EFFECTIVE, project_id, list(group_names))
    return [SecurityRule(**dict(r)) for r in rows]
