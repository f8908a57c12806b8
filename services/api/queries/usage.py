"""Reads for os-simple-tenant-usage: the servers that ran during a window.

A server counts when it was launched before the window ends and was not deleted
before it starts (Nova's ``instance_get_active_by_window_joined``); servers
never launched (still building, or failed before) are left out, as in Nova.
Deleted servers keep their rows (``deleted_at``), so past usage stays readable.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

_COLUMNS = ("id, project_id, name, flavor, vm_state, launched_at, deleted_at")

_IN_WINDOW = f"""
SELECT {_COLUMNS} FROM servers
 WHERE launched_at IS NOT NULL AND launched_at < $2
   AND (deleted_at IS NULL OR deleted_at > $1)
   AND ($3::text IS NULL OR project_id = $3)
 ORDER BY project_id, launched_at, id"""


async def servers_in_window(conn: asyncpg.Connection, start: datetime, stop: datetime,
                            project_id: str | None) -> list[asyncpg.Record]:
    """Servers that ran between ``start`` and ``stop``: the project's, or every
    project's when ``project_id`` is None."""
    return await conn.fetch(_IN_WINDOW, start, stop, project_id)
