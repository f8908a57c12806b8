"""Flavors: list, detail, get (sections 4.4.1.32-34)."""

from __future__ import annotations

from aiohttp import web

from services.api.keys import POOL
from services.api.queries import flavors as q
from services.api.representation import View, represented, route
from services.api.resources.common import base_url, principal
from services.api.views import flavors as views
from shared.errors import FlavorNotFound


@represented
async def list_flavors(request: web.Request) -> View:
    async with request.app[POOL].acquire() as conn:
        rows = await q.list_all(conn)
    base, pid = base_url(request), principal(request).project_id
    return View({"flavors": [views.brief(r, base, pid) for r in rows]})


@represented
async def list_flavors_detail(request: web.Request) -> View:
    async with request.app[POOL].acquire() as conn:
        rows = await q.list_all(conn)
    base, pid = base_url(request), principal(request).project_id
    return View({"flavors": [views.detail(r, base, pid) for r in rows]})


@represented
async def show_flavor(request: web.Request) -> View:
    fid = request.match_info["flavor_id"]
    async with request.app[POOL].acquire() as conn:
        row = await q.get(conn, fid)
    if row is None:
        raise FlavorNotFound(fid)
    return View({"flavor": views.detail(row, base_url(request), principal(request).project_id)})


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/flavors", list_flavors)
    route(router, "GET", "/v2/{project_id}/flavors/detail", list_flavors_detail)
    route(router, "GET", "/v2/{project_id}/flavors/{flavor_id}", show_flavor)
