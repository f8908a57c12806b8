"""Reads for the instance actions resource that are not in ``shared.db.actions``.

Only the ownership check lives here: the actions and their events are read
through ``shared.db.actions``, which every service writes them with.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

# Deleted servers count: their actions stay readable (see resources.instance_actions).
_OWNED = "SELECT EXISTS (SELECT 1 FROM servers WHERE id = $1 AND project_id = $2)"


async def server_owned(conn: asyncpg.Connection, project_id: str, server_id: UUID) -> bool:
    """Whether ``server_id`` is (or was, if deleted) a server of ``project_id``."""
    return await conn.fetchval(_OWNED, server_id, project_id)
