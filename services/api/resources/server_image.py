"""Create image (section 4.4.1.19): ``{"createImage": {"name": ..., "metadata": {...}}}``
/ ``<createImage name="..."><metadata>...</metadata></createImage>``.

A snapshot of the server's root disk becomes a private image of the project
(another project never sees it: 404), linked to the server (``server`` in its
detail, ``?server=`` in lists). ``name`` is required (400); ``metadata`` is
counted against the project's maxImageMeta (413), as Nova counted the given
properties only.

Allowed from ACTIVE and SHUTOFF with no task in flight (``shared.states.SNAPSHOT``,
Nova's snapshot states), else 409. Everything is checked first; then, in one
transaction, the API writes the image SAVING (progress 0), moves the server to
task ``image_snapshot`` and hands the message to its agent
(``server_tasks.cast_action``), which copies the disk and ends the image ACTIVE
with its size (or ERROR, out of the lists, with a fault on the server).

The image's metadata, as the spec's snapshot examples (4.4.1.27-28) show and as
Nova built it: the base image's properties, then ``image_type`` and
``image_location`` ``snapshot``, ``image_state`` (``creating``, ``available``
once ACTIVE), ``instance_uuid``, ``base_image_ref``, ``user_id``, ``owner_id``
and the flavor as ``instance_type_*``, then the user's metadata over all of
them. ``minDisk`` is the flavor's root disk (at least the base image's),
``minRam`` the base image's.

The response is 202 with no body and a ``Location`` header naming the new image.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec
import structlog
from aiohttp import web

from services.api import quotas
from services.api.keys import POOL
from services.api.queries import flavors as flavor_q
from services.api.representation import View
from services.api.resources import server_body as body
from services.api.resources.common import base_url, principal
from services.api.resources.server_tasks import cast_action
from services.api.resources.server_volumes import refuse_volume_backed
from shared.contracts.common import FlavorSpec
from shared.contracts.compute import SnapshotServer
from shared.db import images as image_db
from shared.errors import BadRequest
from shared.states import SNAPSHOT

log = structlog.get_logger(__name__)


class CreateImageBody(msgspec.Struct, kw_only=True):
    name: str | None = None
    metadata: dict[str, str] = {}


def parse(value: Any) -> CreateImageBody:
    if not isinstance(value, dict):
        raise BadRequest("createImage entity requires name attribute")
    try:
        req = msgspec.convert(value, CreateImageBody, strict=False)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"Invalid input for field/attribute createImage: {exc}") from None
    req.name = image_name(req.name, "createImage entity requires name attribute")
    return req


def image_name(value: str | None, missing: str) -> str:
    """An image's name, stripped: required (``missing`` is the fault's words), at
    most 255 characters. The image endpoint's rename follows it too."""
    name = (value or "").strip()
    if not name:
        raise BadRequest(missing)
    if len(name) > 255:
        raise BadRequest("Image name must be at most 255 characters.")
    return name


def snapshot_metadata(*, base: asyncpg.Record | None, server: asyncpg.Record, flavor: FlavorSpec,
                      rxtx_factor: float, user_id: str,
                      given: dict[str, str]) -> dict[str, str]:
    """The new image's metadata: inherited, then the snapshot's own, then the user's."""
    meta: dict[str, str] = dict(base["metadata"]) if base is not None else {}
    meta.update({
        "image_type": "snapshot",
        "image_location": "snapshot",
        "image_state": "creating",
        "instance_uuid": str(server["id"]),
        "user_id": user_id,
        "owner_id": server["project_id"],
        "instance_type_name": flavor.name,
        "instance_type_flavorid": flavor.id,
        "instance_type_memory_mb": str(flavor.ram_mb),
        "instance_type_vcpus": str(flavor.vcpus),
        "instance_type_root_gb": str(flavor.disk_gb),
        "instance_type_ephemeral_gb": str(flavor.ephemeral_gb),
        "instance_type_swap": str(flavor.swap_mb),
        "instance_type_rxtx_factor": str(rxtx_factor),
    })
    if server["image_id"] is not None:
        meta["base_image_ref"] = str(server["image_id"])
    meta.update(given)
    return meta


async def create_image(request: web.Request, row: asyncpg.Record, value: Any) -> View:
    who = principal(request)
    req = parse(value)
    refuse_volume_backed(row, "createImage", "Snapshot its volume instead (os-snapshots).")
    pool = request.app[POOL]
    flavor = msgspec.convert(row["flavor"], FlavorSpec)
    async with pool.acquire() as conn:
        limits = await quotas.absolute_limits(conn, who.project_id)
        body.check_metadata(req.metadata, limits["maxImageMeta"])
        base = await image_db.get_any(conn, row["image_id"]) if row["image_id"] else None
        flavor_row = await flavor_q.get(conn, flavor.id)
    assert req.name is not None
    metadata = snapshot_metadata(
        base=base, server=row, flavor=flavor, user_id=who.user_id, given=req.metadata,
        rxtx_factor=flavor_row["rxtx_factor"] if flavor_row is not None else 1.0)

    sid, image_id = row["id"], uuid.uuid4()

    async def saving_image(conn: asyncpg.Connection) -> None:
        await image_db.insert_snapshot(
            conn, image_id=image_id, name=req.name, project_id=who.project_id,
            server_id=sid, metadata=metadata,
            min_disk_gb=max(flavor.disk_gb, base["min_disk_gb"] if base else 0),
            min_ram_mb=base["min_ram_mb"] if base else 0)

    await cast_action(request, row, SNAPSHOT,
                      SnapshotServer(server_id=sid, image_id=image_id, name=req.name),
                      also=saving_image)
    log.info("api.snapshot_accepted", server_id=str(sid), image_id=str(image_id))
    location = f"{base_url(request)}/v2/{who.project_id}/images/{image_id}"
    return View(None, status=202, headers={"Location": location})
