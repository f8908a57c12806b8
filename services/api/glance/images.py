"""``/v2/images``: list, show, delete and update (PATCH) the compute API's images
as Glance v2 does (JSON only).

A project sees what the compute API shows it: the public images and its own
(snapshots); another project's private image is 404 everywhere, and so is an
id that is not a UUID (openstack ``server create --image NAME`` and
novaclient look a name up as an id first and fall back to ``?name=`` on 404).
Delete is the compute API's (``resources.images.delete_visible``): a public
image or one the project does not own is 403, as Glance answers for an image
one cannot delete. A failed snapshot (see ``views``) is shown by id as
``error``; deleting it makes it gone for good.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from services.api import quotas
from services.api.glance import listing, patch, views
from services.api.keys import POOL
from services.api.queries import images as q
from services.api.resources.common import parse_uuid, principal
from services.api.resources.image_metadata import ImageMetadata
from services.api.resources.images import delete_visible
from services.api.resources.metadata import over_limit
from services.api.side_apps import json_response
from shared.errors import BadRequest, NotFound


class GlanceImageNotFound(NotFound):
    """Glance's words: ``No image found with ID <id>``. (Error classes are registered
    by name for RPC: not ``ImageNotFound``, which is the compute API's.)"""

    def __init__(self, image_id: object) -> None:
        super().__init__(f"No image found with ID {image_id}")


async def list_images(request: web.Request) -> web.Response:
    pid = principal(request).project_id
    query = listing.parse_query(request.query)
    filters = query.filters
    async with request.app[POOL].acquire() as conn:
        marker_row = None
        if query.marker is not None:
            marker_id = parse_uuid(query.marker)
            marker_row = await q.get_visible(conn, pid, marker_id) if marker_id else None
            if marker_row is None:
                raise BadRequest(f"No image found with ID {query.marker}")
        rows = [] if filters.nothing else await q.glance_list(
            conn, pid, ids=filters.ids, names=filters.names, statuses=filters.statuses,
            disk_formats=filters.disk_formats, visibility=filters.visibility,
            owner=filters.owner, size_min=filters.size_min, size_max=filters.size_max,
            properties=filters.properties)
    items = [views.image(r) for r in listing.page(rows, query.sort, query.limit, marker_row)]
    return json_response({"images": items, **listing.links(request.query, items, query.limit)})


async def _shown(request: web.Request) -> Any:
    raw = request.match_info["image_id"]
    image_id = parse_uuid(raw)
    row = None
    if image_id is not None:
        async with request.app[POOL].acquire() as conn:
            row = await q.get_shown(conn, principal(request).project_id, image_id)
    if row is None:
        raise GlanceImageNotFound(raw)
    return row


async def show_image(request: web.Request) -> web.Response:
    return json_response(views.image(await _shown(request)))


async def delete_image(request: web.Request) -> web.Response:
    pid = principal(request).project_id
    row = await _shown(request)
    if row["deleted_at"] is not None:  # a failed snapshot: already gone from the compute API
        async with request.app[POOL].acquire() as conn:
            if not await q.forget_failed(conn, pid, row["id"]):
                raise GlanceImageNotFound(row["id"])
    else:
        await delete_visible(request.app, pid, row)
    return web.Response(status=204)


async def update_image(request: web.Request) -> web.Response:
    draft = patch.MEDIA_TYPES.get(request.content_type)
    if draft is None:
        allowed = ", ".join(sorted(patch.MEDIA_TYPES))
        raise patch.UnsupportedPatchType(
            f"Image PATCH expects Content-Type one of: {allowed}")
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise BadRequest("Malformed JSON in request body.") from None
    changes = patch.parse_changes(body, draft)
    pid = principal(request).project_id
    async with request.app[POOL].acquire() as conn, conn.transaction():
        # The compute API's rules of who may change an image: 404 if the project
        # does not see it, 403 if it does not own it.
        await ImageMetadata().check_writable(conn, request)
        image_id = parse_uuid(request.match_info["image_id"])
        assert image_id is not None  # check_writable said 404 otherwise
        row = await q.lock_owned(conn, pid, image_id)
        if row is None:
            raise GlanceImageNotFound(image_id)  # deleted meanwhile
        metadata = dict(row["metadata"])
        name, new = patch.apply(row["name"], metadata, changes, draft)
        allowed = int((await quotas.absolute_limits(conn, pid)).get("maxImageMeta", -1))
        if 0 <= allowed < len(new) and len(new) > len(metadata):
            raise over_limit(allowed)
        row = await q.update_name_and_metadata(conn, pid, image_id, name, new)
    return json_response(views.image(row))


def setup(router: web.UrlDispatcher) -> None:
    router.add_get("/v2/images", list_images)
    router.add_get("/v2/images/{image_id}", show_image)
    router.add_delete("/v2/images/{image_id}", delete_image)
    router.add_patch("/v2/images/{image_id}", update_image)
