"""Volume types (section 4.1.13's os-volume-types): list and show, read-only.

The spec lists the two operations without examples; the shapes are Nova's
(``{"volume_types": [{"id", "name", "extra_specs"}]}``, ``{"volume_type": {...}}``;
XML ``<volume_types><volume_type id name><extra_specs/></volume_type>``). The
rows are the volume service's: it writes its configured types at start
(``shared.db.volumes.sync_types``, ids derived from the names). A type is named
by its id; an unknown or malformed one is 404. Types are the same for every
project, sorted by name.
"""

from __future__ import annotations

import asyncpg
from aiohttp import web

from services.api.keys import POOL
from services.api.queries import volumes as q
from services.api.representation import View, represented, route
from services.api.resources.common import parse_uuid
from services.api.views import volumes as views
from shared.errors import VolumeTypeNotFound


@represented
async def list_types(request: web.Request) -> View:
    async with request.app[POOL].acquire() as conn:
        rows = await q.volume_types(conn)
    return View({"volume_types": [views.volume_type(r) for r in rows]})


async def load_type(request: web.Request) -> asyncpg.Record:
    """The volume type ``{type_id}`` of the path names; 404 for anything else."""
    raw = request.match_info["type_id"]
    type_id = parse_uuid(raw)
    row = None
    if type_id is not None:
        async with request.app[POOL].acquire() as conn:
            row = await q.volume_type(conn, type_id)
    if row is None:
        raise VolumeTypeNotFound(raw)
    return row


@represented
async def show_type(request: web.Request) -> View:
    return View({"volume_type": views.volume_type(await load_type(request))})


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/os-volume-types", list_types)
    route(router, "GET", "/v2/{project_id}/os-volume-types/{type_id}", show_type)
