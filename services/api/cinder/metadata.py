"""Cinder's volume metadata: ``/volumes/{id}/metadata`` list, update (merge),
replace, and one item's show, set and delete (``openstack volume set
--property`` and ``unset --property`` call them).

The operations and their rules are the compute API's metadata operations
(``services.api.resources.metadata``: string keys and values of at most 255
bytes, at most the project's maxServerMeta items, 413 beyond; a key that is not
there is 404), on the volume's ``metadata``, the same that create and update
set. Only the answers are Cinder's: JSON, and 200 for a deleted item.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
from aiohttp import web

from services.api.cinder.common import json_body
from services.api.keys import POOL
from services.api.queries import volumes as q
from services.api.resources import metadata as rules
from services.api.resources.common import parse_uuid, principal
from services.api.side_apps import json_response
from shared.errors import MalformedBody, VolumeNotFound


def _ids(request: web.Request) -> tuple[str, UUID]:
    raw = request.match_info["volume_id"]
    vid = parse_uuid(raw)
    if vid is None:
        raise VolumeNotFound(raw)
    return principal(request).project_id, vid


class VolumeMetadata(rules.MetadataStore):
    """Any live volume of the caller's project, in any status (as Cinder's update)."""

    limit = "maxServerMeta"
    path = "/v3/{project_id}/volumes/{volume_id}"

    async def read(self, conn: asyncpg.Connection, request: web.Request) -> dict[str, str]:
        pid, vid = _ids(request)
        row = await q.get(conn, pid, vid)
        if row is None:
            raise VolumeNotFound(vid)
        return dict(row["metadata"])

    async def check_writable(self, conn: asyncpg.Connection, request: web.Request) -> None:
        await self.read(conn, request)

    async def merge(self, conn: asyncpg.Connection, request: web.Request,
                    items: dict[str, str], allowed: int) -> dict[str, str] | None:
        return await q.merge_metadata(conn, *_ids(request), items, allowed)

    async def replace(self, conn: asyncpg.Connection, request: web.Request,
                      items: dict[str, str]) -> dict[str, str] | None:
        return await q.replace_metadata(conn, *_ids(request), items)

    async def delete_key(self, conn: asyncpg.Connection, request: web.Request,
                         key: str) -> bool:
        return await q.delete_metadata_key(conn, *_ids(request), key)


STORE = VolumeMetadata()


async def _items(request: web.Request) -> dict[str, str]:
    return rules.check_items(await json_body(request, "metadata"))


async def list_metadata(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        return json_response({"metadata": await STORE.read(conn, request)})


async def update_metadata(request: web.Request) -> web.Response:
    items = await _items(request)
    async with request.app[POOL].acquire() as conn:
        return json_response({"metadata": await rules.update(conn, request, STORE, items)})


async def replace_metadata(request: web.Request) -> web.Response:
    items = await _items(request)
    async with request.app[POOL].acquire() as conn:
        return json_response({"metadata": await rules.replace(conn, request, STORE, items)})


async def show_item(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    async with request.app[POOL].acquire() as conn:
        return json_response({"meta": {key: await rules.show_key(conn, request, STORE, key)}})


async def set_item(request: web.Request) -> web.Response:
    key = rules.check_key(request.match_info["key"])
    item = await json_body(request, "meta")
    if not isinstance(item, dict):
        raise MalformedBody()
    value = rules.item_from_body({"meta": item}, key)
    async with request.app[POOL].acquire() as conn:
        await rules.set_key(conn, request, STORE, key, value)
    return json_response({"meta": {key: value}})


async def delete_item(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        await rules.delete_key(conn, request, STORE, request.match_info["key"])
    return web.Response(status=200)


def setup(router: web.UrlDispatcher) -> None:
    base = STORE.path + "/metadata"
    router.add_get(base, list_metadata)
    router.add_post(base, update_metadata)
    router.add_put(base, replace_metadata)
    router.add_get(base + "/{key}", show_item)
    router.add_put(base + "/{key}", set_item)
    router.add_delete(base + "/{key}", delete_item)
