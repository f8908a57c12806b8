"""Flavors: list, detail, get (sections 4.4.1.32-34).

Lists filter by ``minRam`` (flavors with at least that many MB of RAM) and
``minDisk`` (at least that many GB of disk), as Nova did; each must be a
non-negative integer, else 400. They page with ``limit`` and ``marker`` (a
flavor id) but, unlike servers and images, sort by id ascending rather than
newest first: section 3.6 says "When a create time is not available they are
sorted by ID", flavors are a fixed catalog whose create time means nothing to
a user, and Nova sorted them by flavor id. ``changes-since`` does not apply.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.api.keys import POOL
from services.api.queries import flavors as q
from services.api.representation import View, represented, route
from services.api.resources.common import base_url, beyond_int, parse_digits, principal
from services.api.resources.pagination import Page, bad_marker, next_links, page_params
from services.api.views import flavors as views
from shared.errors import BadRequest, FlavorNotFound

_PG_INT_MAX = 2**31 - 1


def _minimum(request: web.Request, name: str) -> int:
    raw = request.query.get(name)
    if raw is None:
        return 0
    # Larger than any flavor's (an integer column): the same as the largest.
    value = None if beyond_int(raw) else parse_digits(raw, ceiling=_PG_INT_MAX)
    if value is None:
        raise BadRequest(f"Invalid {name} filter [{raw[:40]}]")
    return value


async def _page(request: web.Request) -> tuple[list[Any], Page]:
    page = page_params(request, polling=False)
    min_ram, min_disk = _minimum(request, "minRam"), _minimum(request, "minDisk")
    async with request.app[POOL].acquire() as conn:
        if page.marker is not None and await q.get(conn, page.marker) is None:
            raise bad_marker(page.marker)
        rows = await q.list_page(conn, min_ram_mb=min_ram, min_disk_gb=min_disk,
                                 limit=page.limit, after=page.marker)
    return rows, page


@represented
async def list_flavors(request: web.Request) -> View:
    rows, page = await _page(request)
    base, pid = base_url(request), principal(request).project_id
    items = [views.brief(r, base, pid) for r in rows]
    return View({"flavors": items, **next_links(request, "flavors", "flavors", items, page)})


@represented
async def list_flavors_detail(request: web.Request) -> View:
    rows, page = await _page(request)
    base, pid = base_url(request), principal(request).project_id
    items = [views.detail(r, base, pid) for r in rows]
    return View({"flavors": items,
                 **next_links(request, "flavors/detail", "flavors", items, page)})


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
