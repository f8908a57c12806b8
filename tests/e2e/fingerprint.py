"""What a project holds, read straight from the stack's database, to compare
before and after a request that must change nothing.

Everything a tenant's request can change is in it: servers (with their vm
and task state, updated_at, metadata, groups, name), the project's own
images, keypairs, security groups and rules, floating IPs. Instance actions
and console tokens are left out: a refused action records none, and reads
(console output, VNC) record none either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from tests.e2e.client import Cloud

_QUERIES = {
    "servers": """
        SELECT id, name, vm_state, task_state, power_state, updated_at, deleted_at,
               image_id, metadata::text, security_groups::text, key_name, availability_zone
        FROM servers WHERE project_id = $1 ORDER BY id""",
    "images": """
        SELECT id, name, status, metadata::text, updated_at, deleted_at
        FROM images WHERE owner_project_id = $1 ORDER BY id""",
    "keypairs": """
        SELECT user_id, name, fingerprint, public_key
        FROM keypairs WHERE project_id = $1 ORDER BY user_id, name""",
    "security_groups": """
        SELECT id, name, description FROM security_groups WHERE project_id = $1 ORDER BY id""",
    "security_group_rules": """
        SELECT r.id, r.parent_group_id, r.ip_protocol, r.from_port, r.to_port, r.cidr::text,
               r.group_id
        FROM security_group_rules r JOIN security_groups g ON g.id = r.parent_group_id
        WHERE g.project_id = $1 ORDER BY r.id""",
    "floating_ips": """
        SELECT id, address::text, server_id, fixed_address::text
        FROM floating_ips WHERE project_id = $1 ORDER BY id""",
}

Fingerprint = dict[str, list[tuple[Any, ...]]]


async def fingerprint(conn: asyncpg.Connection, project_id: str) -> Fingerprint:
    """The project's state, read in one snapshot (so a change in flight is seen whole)."""
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        return {name: [tuple(row) for row in await conn.fetch(sql, project_id)]
                for name, sql in _QUERIES.items()}


def in_flight(state: Fingerprint) -> list[str]:
    """What in ``state`` is still moving on its own: servers building or with a task,
    images being saved. Empty when the project is settled."""
    moving = [f"server {row[0]} {row[2]}/{row[3]}" for row in state["servers"]
              if row[6] is None and (row[3] is not None or row[2] == "building")]
    moving += [f"image {row[0]} SAVING" for row in state["images"]
               if row[5] is None and row[2] == "SAVING"]
    return moving


@asynccontextmanager
async def unchanged(cloud: Cloud, project_id: str) -> AsyncIterator[None]:
    """Assert that the project's state is the same after the block as before it.

    The project must be settled when the block starts (nothing in flight), or
    the comparison would catch its own progress rather than the requests'.
    """
    conn = await cloud.db()
    try:
        before = await fingerprint(conn, project_id)
        assert not in_flight(before), in_flight(before)
        yield
        assert await fingerprint(conn, project_id) == before
    finally:
        await conn.close()
