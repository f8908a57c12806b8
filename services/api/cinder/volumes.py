"""Cinder v3 volumes: create, list (summary and detail), show, update, delete,
over the compute API's volumes and with its rules: create and delete are
``resources.volumes.create`` and ``delete`` (the same body checks, quota,
zones, sources, state rules and messages to the volume service), given the
body in the compute API's field names.

Cinder's create body differs in names only (``name``, ``description``;
``imageRef`` or ``image_id``) and in sources Nimbus has not: a volume cloned
from another (``source_volid``), restored from a backup (``backup_id``) or put
in a consistency group or group is 400, saying so; so is ``multiattach`` true.
Other fields are ignored, as Cinder 3.0 ignored them. An update changes the
name, the description and the metadata (which it replaces, as Cinder's update
did), in any status. ``cascade`` delete (snapshots with it) is not built: 400.

Unknown, malformed and other projects' ids are 404 itemNotFound (a client looks
a name up this way first, then lists ``?name=``).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from services.api import quotas
from services.api.cinder import views
from services.api.cinder.common import json_body, metadata_filter, page, scope
from services.api.keys import POOL
from services.api.queries import volumes as q
from services.api.resources import volume_body as body
from services.api.resources import volumes as compute
from services.api.resources.common import principal
from services.api.side_apps import json_response
from shared.errors import BadRequest, VolumeNotFound

_UNSUPPORTED = {
    "source_volid": "Creating a volume from another volume (source_volid) is not supported: "
                    "snapshot the volume and create the new one from the snapshot.",
    "backup_id": "Volume backups are not supported, so a volume cannot be restored from one.",
    "consistencygroup_id": "Consistency groups are not supported.",
    "group_id": "Volume groups are not supported.",
}


def renamed(fields: dict[str, Any]) -> dict[str, Any]:
    """Cinder's ``name``/``description`` as the compute API's ``display_*`` (the
    new names win when a body has both)."""
    out = dict(fields)
    for new, old in (("name", "display_name"), ("description", "display_description")):
        if new in out:
            out[old] = out.pop(new)
    return out


def compute_body(vol: dict[str, Any]) -> dict[str, Any]:
    """The compute API's create body for Cinder's ``volume`` object."""
    for field, why in _UNSUPPORTED.items():
        if vol.get(field) not in (None, ""):
            raise BadRequest(why)
    multiattach = vol.get("multiattach")
    if multiattach not in (None, False) and str(multiattach).strip().lower() != "false":
        raise BadRequest("Multiattach volumes are not supported: a volume attaches to one "
                         "server at a time.")
    fields = renamed(vol)
    out = {k: fields[k] for k in ("size", "display_name", "display_description", "volume_type",
                                  "availability_zone", "snapshot_id", "metadata")
           if k in fields}
    image = fields.get("imageRef", fields.get("image_id"))
    if image is not None:
        out["imageRef"] = image
    return out


async def _details(request: web.Request) -> list[dict[str, Any]]:
    query = request.query
    async with request.app[POOL].acquire() as conn:
        rows = await q.filtered(conn, scope(request),
                                name=query.get("name", query.get("display_name")),
                                status=query.get("status"),
                                metadata=metadata_filter(query.get("metadata")))
    return [views.volume(request, r) for r in rows]


async def list_volumes(request: web.Request) -> web.Response:
    return json_response(page(request, await _details(request), "volumes", "volumes",
                              views.volume_summary))


async def list_volumes_detail(request: web.Request) -> web.Response:
    return json_response(page(request, await _details(request), "volumes/detail", "volumes"))


async def show_volume(request: web.Request) -> web.Response:
    vid = compute.volume_id_from_path(request)
    async with request.app[POOL].acquire() as conn:
        row = await q.get(conn, principal(request).project_id, vid)
    if row is None:
        raise VolumeNotFound(vid)
    return json_response({"volume": views.volume(request, row)})


async def create_volume(request: web.Request) -> web.Response:
    vol = compute_body(await json_body(request, "volume"))
    row, type_name = await compute.create(request, {"volume": vol})
    shown = {**dict(row), "volume_type_name": type_name}
    return json_response({"volume": views.volume(request, shown)}, 202)


async def update_volume(request: web.Request) -> web.Response:
    vid = compute.volume_id_from_path(request)
    pid = principal(request).project_id
    fields = renamed(await json_body(request, "volume"))
    async with request.app[POOL].acquire() as conn:
        limits = await quotas.absolute_limits(conn, pid)
        changes = body.parse_update(fields, max_meta=limits["maxServerMeta"])
        row = await q.update(conn, pid, vid, **changes)
    if row is None:
        raise VolumeNotFound(vid)
    return json_response({"volume": views.volume(request, row)})


async def delete_volume(request: web.Request) -> web.Response:
    vid = compute.volume_id_from_path(request)
    cascade = request.query.get("cascade", "false").strip().lower()
    if cascade not in ("false", "0", "no", ""):
        raise BadRequest("Cascade delete is not supported: delete the volume's snapshots "
                         "first.")
    await compute.delete(request, vid)
    return web.Response(status=202)


async def volume_action(request: web.Request) -> web.Response:
    """Actions on a volume (``os-extend``, ``os-set_bootable``...) are not built;
    the answer says which was asked, once the volume is known to be the caller's."""
    vid = compute.volume_id_from_path(request)
    async with request.app[POOL].acquire() as conn:
        if await q.get(conn, principal(request).project_id, vid) is None:
            raise VolumeNotFound(vid)
    raw = await request.read()
    try:
        names = list(json.loads(raw)) if raw else []
    except (ValueError, TypeError):
        names = []
    what = names[0] if names else "(none)"
    raise BadRequest(f"Volume action {str(what)[:60]} is not supported by this cloud.")


def setup(router: web.UrlDispatcher) -> None:
    base = "/v3/{project_id}/volumes"
    router.add_get(base, list_volumes)
    router.add_post(base, create_volume)
    router.add_get(base + "/detail", list_volumes_detail)
    router.add_get(base + "/{volume_id}", show_volume)
    router.add_put(base + "/{volume_id}", update_volume)
    router.add_delete(base + "/{volume_id}", delete_volume)
    router.add_post(base + "/{volume_id}/action", volume_action)
