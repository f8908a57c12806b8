"""Reads for os-hypervisors: what the servers on each compute host amount to.

The host rows themselves come from ``shared.db.hosts.all_hosts`` (one rule for
alive/down); here only the live servers placed on hosts are counted.
"""

from __future__ import annotations

import asyncpg

# current_workload as Nova counted it: servers on the host with a task under way.
_RUNNING = """
SELECT host, count(*) AS running_vms, count(task_state) AS current_workload
  FROM servers
 WHERE deleted_at IS NULL AND host IS NOT NULL
 GROUP BY host"""

_SERVERS_ON = """
SELECT id, name, host FROM servers
 WHERE deleted_at IS NULL AND host = ANY($1::text[])
 ORDER BY created_at, id"""


async def running(conn: asyncpg.Connection) -> dict[str, tuple[int, int]]:
    """Host -> (live servers on it, those of them with a task under way)."""
    return {r["host"]: (r["running_vms"], r["current_workload"])
            for r in await conn.fetch(_RUNNING)}


async def servers_on(conn: asyncpg.Connection, hosts: list[str]) -> list[asyncpg.Record]:
    """The live servers on ``hosts`` (every project's: the caller is an admin)."""
    return await conn.fetch(_SERVERS_ON, hosts)
