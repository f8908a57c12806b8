"""Server metadata (sections 4.4.1.11-16): list, update, replace, and one item's
get, set and delete; the operations and their rules are in ``metadata``.

Reads work while the server exists (a server being deleted still shows its
metadata, as it still shows in GET). Changes need a server of the caller's
project that is neither deleted nor being deleted: otherwise 404. Each change
bumps the server's ``updated_at``, so ``changes-since`` lists it.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
from aiohttp import web

from services.api.queries import servers as q
from services.api.resources.common import parse_uuid, principal
from services.api.resources.metadata import MetadataStore, setup_metadata_routes
from shared.errors import ServerNotFound


def _ids(request: web.Request) -> tuple[str, UUID]:
    raw = request.match_info["server_id"]
    sid = parse_uuid(raw)
    if sid is None:
        raise ServerNotFound(raw)
    return principal(request).project_id, sid


class ServerMetadata(MetadataStore):
    limit = "maxServerMeta"
    path = "/v2/{project_id}/servers/{server_id}"

    async def read(self, conn: asyncpg.Connection, request: web.Request) -> dict[str, str]:
        pid, sid = _ids(request)
        metadata = await q.get_metadata(conn, pid, sid)
        if metadata is None:
            raise ServerNotFound(sid)
        return metadata

    async def check_writable(self, conn: asyncpg.Connection, request: web.Request) -> None:
        pid, sid = _ids(request)
        if not await q.is_mutable(conn, pid, sid):
            raise ServerNotFound(sid)

    async def merge(self, conn: asyncpg.Connection, request: web.Request,
                    items: dict[str, str], allowed: int) -> dict[str, str] | None:
        return await q.merge_metadata(conn, *_ids(request), items, allowed)

    async def replace(self, conn: asyncpg.Connection, request: web.Request,
                      items: dict[str, str]) -> dict[str, str] | None:
        return await q.replace_metadata(conn, *_ids(request), items)

    async def delete_key(self, conn: asyncpg.Connection, request: web.Request,
                         key: str) -> bool:
        return await q.delete_metadata_key(conn, *_ids(request), key)


def setup(router: web.UrlDispatcher) -> None:
    setup_metadata_routes(router, ServerMetadata())
