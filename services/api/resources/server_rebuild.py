"""Rebuild server (section 4.4.1.18): ``{"rebuild": {...}}`` / ``<rebuild .../>``.

The server gets a new root disk from ``imageRef`` (required; an image the
project sees and ACTIVE, else 400), and optionally a new ``name``, new
``metadata`` (replacing the old, as in Nova), injected files (``personality``,
with create's limits: maxPersonality, maxPersonalitySize) and ``adminPass``
(generated when absent). Its flavor and addresses stay.

Allowed from ACTIVE, SHUTOFF and ERROR (``shared.states.REBUILD``, after Nova's
``check_instance_state`` for rebuild), with no task in flight; anything else is
409. Everything is checked before anything changes; then, in one transaction,
the server shows REBUILD, already with its new image, name and metadata (the
spec's response example does), and the message goes to its agent
(``server_tasks.cast_action``), which re-images the disk: it ends ACTIVE, or
SHUTOFF if it was stopped (as in Nova), or ERROR with a fault.

The response is 202 with the server's core view (as the spec's example shows
it: no extension attributes, addresses with version and addr only) and its
``adminPass``, and a ``Location`` header: the example shows both.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
import structlog
from aiohttp import web

from services.api import quotas
from services.api.keys import POOL
from services.api.queries import images as image_q
from services.api.queries import servers as q
from services.api.representation import View
from services.api.resources import server_body as body
from services.api.resources.common import base_url, parse_uuid, principal, ref_id
from services.api.resources.server_create import admin_password
from services.api.resources.server_tasks import cast_action
from services.api.resources.server_volumes import refuse_volume_backed
from services.api.views import servers as views
from shared.contracts.common import FlavorSpec
from shared.contracts.compute import InjectedFile, RebuildServer
from shared.db import servers as server_db
from shared.errors import BadRequest, Conflict
from shared.states import REBUILD

log = structlog.get_logger(__name__)


class RebuildBody(msgspec.Struct, kw_only=True):
    imageRef: str | int | None = None
    name: str | None = None
    metadata: dict[str, str] | None = None
    personality: list[body.PersonalityFile] = []
    adminPass: object = None


def parse(value: Any) -> RebuildBody:
    if not isinstance(value, dict):
        raise BadRequest("The rebuild action needs an imageRef.")
    try:
        req = msgspec.convert(value, RebuildBody, strict=False)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"Invalid input for field/attribute rebuild: {exc}") from None
    if req.imageRef is None or not str(req.imageRef).strip():
        raise BadRequest("Could not parse imageRef from request.")
    if req.name is not None:
        req.name = body.server_name(req.name)
    req.adminPass = body.admin_pass(value.get("adminPass"))
    return req


async def rebuild(request: web.Request, row: asyncpg.Record, value: Any) -> View:
    who = principal(request)
    req = parse(value)
    refuse_volume_backed(row, "rebuild", "Create a new server from another volume instead.")
    pool = request.app[POOL]
    async with pool.acquire() as conn:
        limits = await quotas.absolute_limits(conn, who.project_id)
        if req.metadata is not None:
            # Create's checks (count against maxServerMeta: 413; key and value sizes: 400).
            body.check_metadata(req.metadata, limits["maxServerMeta"])
        files = body.personality(req.personality, max_files=limits["maxPersonality"],
                                 max_size=limits["maxPersonalitySize"])
        image_id = parse_uuid(ref_id(req.imageRef))
        image = await image_q.get_visible(conn, who.project_id, image_id) if image_id else None
    if image is None:
        raise BadRequest("Can not find requested image.")
    if image["status"] != "ACTIVE":
        raise BadRequest(f"Image {image['id']} is not active.")
    flavor = msgspec.convert(row["flavor"], FlavorSpec)
    if flavor.disk_gb and flavor.disk_gb < image["min_disk_gb"]:
        raise BadRequest("Flavor's disk is too small for requested image.")
    if flavor.ram_mb < image["min_ram_mb"]:
        raise BadRequest("Flavor's memory is too small for requested image.")

    name = req.name if req.name is not None else row["name"]
    metadata = req.metadata if req.metadata is not None else dict(row["metadata"])
    admin_pass = req.adminPass if req.adminPass is not None else admin_password()

    sid = row["id"]
    msg = RebuildServer(
        server_id=sid, name=name, admin_pass=admin_pass, metadata=metadata,
        image=image_q.image_spec(image),
        files=tuple(InjectedFile(path=f.path, contents=f.contents) for f in files))

    async def new_target(conn: asyncpg.Connection) -> None:
        await server_db.set_rebuild_target(conn, sid, image_id=image["id"], name=name,
                                           metadata=metadata)

    await cast_action(request, row, REBUILD, msg, also=new_target)
    log.info("api.rebuild_accepted", server_id=str(sid), image=str(image["id"]))

    async with pool.acquire() as conn:
        current = await q.get(conn, who.project_id, sid)
    if current is None:  # deleted in the meantime
        raise Conflict(f"Cannot 'rebuild' instance {sid}: it is deleted.")
    base = base_url(request)
    view = views.core(current, base, who.project_id, is_admin=who.is_admin)
    view["adminPass"] = admin_pass
    return View({"server": view}, status=202,
                headers={"Location": f"{base}/v2/{who.project_id}/servers/{sid}"})
