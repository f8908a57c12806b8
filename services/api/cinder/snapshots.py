"""Cinder v3 snapshots: create, list (summary and detail), show, update, delete,
over the compute API's snapshots and with its rules
(``resources.volume_snapshots.create`` and ``delete``: the volume must be the
project's and available, or in-use with ``force``; a snapshot a volume is being
made from is not deleted).

Cinder's body names ``name`` and ``description``; snapshots here hold no
metadata, so an empty ``metadata`` (which cinderclient always sends) is
accepted and any other is 400. Cinder's summary and detail lists show the same
fields; so do these.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.api.cinder import views
from services.api.cinder.common import json_body, page, scope
from services.api.cinder.volumes import renamed
from services.api.keys import POOL
from services.api.queries import volumes as q
from services.api.resources import volume_body as body
from services.api.resources import volume_snapshots as compute
from services.api.resources.common import parse_uuid, principal
from services.api.side_apps import json_response
from shared.errors import BadRequest, SnapshotNotFound


def _no_metadata(fields: dict[str, Any]) -> dict[str, Any]:
    meta = fields.pop("metadata", None)
    if meta not in (None, {}):
        raise BadRequest("Snapshot metadata is not supported: leave metadata out (or empty).")
    return fields


async def _details(request: web.Request) -> list[dict[str, Any]]:
    query = request.query
    raw_volume = query.get("volume_id")
    volume_id = parse_uuid(raw_volume) if raw_volume else None
    if raw_volume and volume_id is None:
        return []  # no snapshot is of a volume with such an id
    async with request.app[POOL].acquire() as conn:
        rows = await q.filtered_snapshots(
            conn, scope(request), name=query.get("name", query.get("display_name")),
            status=query.get("status"), volume_id=volume_id)
    return [views.snapshot(r) for r in rows]


async def list_snapshots(request: web.Request) -> web.Response:
    return json_response(page(request, await _details(request), "snapshots", "snapshots"))


async def list_snapshots_detail(request: web.Request) -> web.Response:
    return json_response(page(request, await _details(request), "snapshots/detail",
                              "snapshots"))


async def show_snapshot(request: web.Request) -> web.Response:
    sid = compute.snapshot_id_from_path(request)
    async with request.app[POOL].acquire() as conn:
        row = await q.get_snapshot(conn, principal(request).project_id, sid)
    if row is None:
        raise SnapshotNotFound(sid)
    return json_response({"snapshot": views.snapshot(row)})


async def create_snapshot(request: web.Request) -> web.Response:
    fields = _no_metadata(renamed(await json_body(request, "snapshot")))
    req = body.parse_snapshot({"snapshot": fields})
    row = await compute.create(request, req)
    return json_response({"snapshot": views.snapshot(row)}, 202)


async def update_snapshot(request: web.Request) -> web.Response:
    sid = compute.snapshot_id_from_path(request)
    fields = _no_metadata(renamed(await json_body(request, "snapshot")))
    changes = body.parse_update(fields, max_meta=0, metadata=False)
    async with request.app[POOL].acquire() as conn:
        row = await q.update_snapshot(conn, principal(request).project_id, sid, **changes)
    if row is None:
        raise SnapshotNotFound(sid)
    return json_response({"snapshot": views.snapshot(row)})


async def delete_snapshot(request: web.Request) -> web.Response:
    await compute.delete(request, compute.snapshot_id_from_path(request))
    return web.Response(status=202)


def setup(router: web.UrlDispatcher) -> None:
    base = "/v3/{project_id}/snapshots"
    router.add_get(base, list_snapshots)
    router.add_post(base, create_snapshot)
    router.add_get(base + "/detail", list_snapshots_detail)
    router.add_get(base + "/{snapshot_id}", show_snapshot)
    router.add_put(base + "/{snapshot_id}", update_snapshot)
    router.add_delete(base + "/{snapshot_id}", delete_snapshot)
