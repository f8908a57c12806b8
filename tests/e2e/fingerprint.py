"""What a project holds, read straight from the stack's database, to compare
before and after a request that must change nothing.

Everything a tenant's request can change is in it: servers (with their vm
and task state, updated_at, metadata, groups, name), the project's own
images, keypairs, security groups and rules, floating IPs, volumes and their
snapshots. Instance actions
and console tokens are left out: a refused action records none, and reads
(console output, VNC) record none either.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from tests.e2e.client import Cloud

_QUERIES = {
    "servers": """
        SELECT id, name, vm_state, task_state, power_state, updated_at, deleted_at,
               image_id, metadata, security_groups, key_name, availability_zone
        FROM servers WHERE project_id = $1""",
    "images": """
        SELECT id, name, status, metadata, updated_at, deleted_at
        FROM images WHERE owner_project_id = $1""",
    "keypairs": """
        SELECT user_id, name, fingerprint, public_key FROM keypairs WHERE project_id = $1""",
    "security_groups": """
        SELECT id, name, description FROM security_groups WHERE project_id = $1""",
    "security_group_rules": """
        SELECT r.id, r.parent_group_id, r.ip_protocol, r.from_port, r.to_port, r.cidr,
               r.group_id
        FROM security_group_rules r JOIN security_groups g ON g.id = r.parent_group_id
        WHERE g.project_id = $1""",
    "floating_ips": """
        SELECT id, address, server_id, fixed_address FROM floating_ips WHERE project_id = $1""",
    "volumes": """
        SELECT id, status, size_gb, display_name, display_description, volume_type_id,
               availability_zone, snapshot_id, image_id, metadata, server_id, updated_at,
               deleted_at
        FROM volumes WHERE project_id = $1""",
    "volume_snapshots": """
        SELECT id, volume_id, status, size_gb, display_name, display_description, updated_at,
               deleted_at
        FROM volume_snapshots WHERE project_id = $1""",
}

# Volume and snapshot statuses that move on by themselves (shared.volume_states).
_MOVING = ("creating", "attaching", "detaching", "deleting")

# One statement, so one round trip and one snapshot: a change in flight is seen whole.
_FINGERPRINT = "SELECT " + ", ".join(
    f"(SELECT coalesce(json_agg(t ORDER BY t::text), '[]') FROM ({sql}) t) AS {name}"
    for name, sql in _QUERIES.items())

Fingerprint = dict[str, list[dict[str, Any]]]


async def fingerprint(conn: asyncpg.Connection, project_id: str) -> Fingerprint:
    """The project's state: each table's rows as JSON objects, in a stable order."""
    row = await conn.fetchrow(_FINGERPRINT, project_id)
    return {name: json.loads(row[name]) for name in _QUERIES}


def in_flight(state: Fingerprint) -> list[str]:
    """What in ``state`` is still moving on its own: servers building or with a task,
    images being saved, volumes and snapshots in a transient status. Empty when the
    project is settled."""
    moving = [f"server {s['id']} {s['vm_state']}/{s['task_state']}" for s in state["servers"]
              if s["deleted_at"] is None
              and (s["task_state"] is not None or s["vm_state"] == "building")]
    moving += [f"image {i['id']} SAVING" for i in state["images"]
               if i["deleted_at"] is None and i["status"] == "SAVING"]
    moving += [f"{kind[:-1]} {v['id']} {v['status']}" for kind in ("volumes", "volume_snapshots")
               for v in state[kind] if v["deleted_at"] is None and v["status"] in _MOVING]
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
