"""Images: list, detail, get (sections 4.4.1.22-24): public ones and the project's own."""

from __future__ import annotations

from aiohttp import web

from services.api.keys import POOL
from services.api.queries import images as q
from services.api.representation import View, represented, route
from services.api.resources.common import base_url, parse_uuid, principal
from services.api.views import images as views
from shared.errors import ImageNotFound


@represented
async def list_images(request: web.Request) -> View:
    pid = principal(request).project_id
    async with request.app[POOL].acquire() as conn:
        rows = await q.list_visible(conn, pid)
    base = base_url(request)
    return View({"images": [views.brief(r, base, pid) for r in rows]})


@represented
async def list_images_detail(request: web.Request) -> View:
    pid = principal(request).project_id
    async with request.app[POOL].acquire() as conn:
        rows = await q.list_visible(conn, pid)
    base = base_url(request)
    return View({"images": [views.detail(r, base, pid) for r in rows]})


@represented
async def show_image(request: web.Request) -> View:
    pid = principal(request).project_id
    raw = request.match_info["image_id"]
    image_id = parse_uuid(raw)
    row = None
    if image_id is not None:
        async with request.app[POOL].acquire() as conn:
            row = await q.get_visible(conn, pid, image_id)
    if row is None:
        raise ImageNotFound(raw)
    return View({"image": views.detail(row, base_url(request), pid)})


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/images", list_images)
    route(router, "GET", "/v2/{project_id}/images/detail", list_images_detail)
    route(router, "GET", "/v2/{project_id}/images/{image_id}", show_image)
