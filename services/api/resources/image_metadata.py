"""Image metadata (sections 4.4.1.26-31): list, update, replace, and one item's
get, set and delete; the operations and their rules are in ``metadata``.

Anyone who sees an image reads its metadata. Only the project that owns it
changes it (4.4.1.27: "You can only update the metadata on images that you are
the owner of. If you are not the owner of an image then a 403 Forbidden error
will be thrown"): a public image is 403 for every project, admin included
(the brief left admins open; the spec does not, and the public catalog is the
provider's), another project's private image 404, as it is invisible. Items
are capped by ``maxImageMeta``.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
from aiohttp import web

from services.api.queries import images as q
from services.api.resources.common import parse_uuid, principal
from services.api.resources.images import not_owner
from services.api.resources.metadata import MetadataStore, setup_metadata_routes
from shared.errors import ImageNotFound


def _ids(request: web.Request) -> tuple[str, UUID]:
    raw = request.match_info["image_id"]
    image_id = parse_uuid(raw)
    if image_id is None:
        raise ImageNotFound(raw)
    return principal(request).project_id, image_id


class ImageMetadata(MetadataStore):
    limit = "maxImageMeta"
    path = "/v2/{project_id}/images/{image_id}"

    async def read(self, conn: asyncpg.Connection, request: web.Request) -> dict[str, str]:
        pid, image_id = _ids(request)
        row = await q.get_visible(conn, pid, image_id)
        if row is None:
            raise ImageNotFound(image_id)
        return dict(row["metadata"])

    async def check_writable(self, conn: asyncpg.Connection, request: web.Request) -> None:
        pid, image_id = _ids(request)
        if await q.is_owned(conn, pid, image_id):
            return
        if await q.get_visible(conn, pid, image_id) is None:
            raise ImageNotFound(image_id)
        raise not_owner(image_id)

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
    setup_metadata_routes(router, ImageMetadata())
