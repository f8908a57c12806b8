"""Images: list, detail, get, delete (sections 4.4.1.22-25): public ones and the
project's own (snapshots); metadata lives in ``image_metadata``.

Lists page with ``limit``/``marker`` and poll with ``changes-since`` (see
``pagination``) and filter by ``name`` (exact, as the image service matched it
for Nova), ``status`` (case-insensitive; ``DELETED`` only with
``changes-since``) and ``server`` (the snapshots of a server: its id or link).
The spec's image sections name no other filter (no ``type``, ``minRam``...);
other query parameters are ignored.

Delete: only the project's own images (4.4.1.25: "You can only delete images
that you are the owner of. If you are not the owner of an image then a 403
Forbidden error will be thrown"): a public image is 403, admin or not (the
catalog is the provider's; no image service is exposed to manage it), another
project's private image 404 as if it did not exist. A deleted image is gone
from lists and GET, and shows as DELETED in ``changes-since`` lists.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiohttp import web

from services.api.keys import POOL, SETTINGS
from services.api.queries import images as q
from services.api.representation import View, represented, route
from services.api.resources.common import base_url, parse_uuid, principal, ref_id
from services.api.resources.pagination import Page, bad_marker, next_links, page_params
from services.api.views import images as views
from shared.errors import Forbidden, ImageNotFound
from shared.image_store import ImageStore

log = structlog.get_logger(__name__)


async def _page(request: web.Request) -> tuple[list[Any], Page]:
    pid = principal(request).project_id
    page = page_params(request)
    query = request.query
    server_id = None
    if "server" in query:
        server_id = parse_uuid(ref_id(query["server"]))
    filters = q.ImageFilters(changes_since=page.changes_since, name=query.get("name"),
                             status=query.get("status"), server_id=server_id)
    async with request.app[POOL].acquire() as conn:
        after = None
        if page.marker is not None:
            marker_id = parse_uuid(page.marker)
            after = await q.marker_position(conn, pid, marker_id) if marker_id else None
            if after is None:
                raise bad_marker(page.marker)
        if "server" in query and server_id is None:
            return [], page  # no server has that id: no snapshot of it either
        rows = await q.list_page(conn, pid, filters, page.limit, after)
    return rows, page


@represented
async def list_images(request: web.Request) -> View:
    pid = principal(request).project_id
    rows, page = await _page(request)
    base = base_url(request)
    items = [views.brief(r, base, pid) for r in rows]
    return View({"images": items, **next_links(request, "images", "images", items, page)})


@represented
async def list_images_detail(request: web.Request) -> View:
    pid = principal(request).project_id
    rows, page = await _page(request)
    base = base_url(request)
    items = [views.detail(r, base, pid) for r in rows]
    return View({"images": items, **next_links(request, "images/detail", "images", items, page)})


async def _load(request: web.Request) -> Any:
    pid = principal(request).project_id
    raw = request.match_info["image_id"]
    image_id = parse_uuid(raw)
    row = None
    if image_id is not None:
        async with request.app[POOL].acquire() as conn:
            row = await q.get_visible(conn, pid, image_id)
    if row is None:
        raise ImageNotFound(raw)
    return row


@represented
async def show_image(request: web.Request) -> View:
    row = await _load(request)
    return View({"image": views.detail(row, base_url(request), principal(request).project_id)})


def not_owner(image_id: object) -> Forbidden:
    return Forbidden(f"Image {image_id} is not yours: only its owner may change it.")


async def delete_visible(app: web.Application, project_id: str, row: Any) -> None:
    """Delete ``row``, an image ``project_id`` sees, with its file: Forbidden if the
    project does not own it, ImageNotFound if it went meanwhile. The image
    endpoint's delete is this one too."""
    async with app[POOL].acquire() as conn:
        deleted = await q.delete_owned(conn, project_id, row["id"])
    if deleted is None:
        if row["owner_project_id"] != project_id:
            raise not_owner(row["id"])
        raise ImageNotFound(row["id"])  # deleted meanwhile
    if deleted.location is not None:
        # The file goes with the image; a snapshot still being written is removed
        # by the agent that writes it (``shared.db.images.finish_snapshot``).
        store = ImageStore.from_settings(app[SETTINGS].images)
        try:
            await asyncio.to_thread(store.remove, deleted.location)
        except OSError as exc:  # the image is deleted either way; the file is an operator's
            log.warning("api.image_file_left", image_id=str(row["id"]), error=exc.strerror)
    log.info("api.image_delete", image_id=str(row["id"]))


@represented
async def delete_image(request: web.Request) -> View:
    await delete_visible(request.app, principal(request).project_id, await _load(request))
    return View(None, status=204)


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/images", list_images)
    route(router, "GET", "/v2/{project_id}/images/detail", list_images_detail)
    route(router, "GET", "/v2/{project_id}/images/{image_id}", show_image)
    route(router, "DELETE", "/v2/{project_id}/images/{image_id}", delete_image)
