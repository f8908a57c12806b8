"""Volumes (section 4.4.13.1-5, extension os-volumes): list, list detail, create,
show, delete. Snapshots live in ``volume_snapshots``, types in ``volume_types``;
attachments (``/servers/{id}/os-volume_attachments``) are not here.

The volume service (queue ``volume``, ``shared.contracts.volume``) makes and
removes the bits; the API writes the row in its first status and, in the same
transaction, the message in the outbox (as server create and actions do), then
the relay sends it. Reads never touch the broker.

Create (202; 200 as Nova under the ``nova`` profile, ``status_codes``) checks the
whole body first (``volume_body``), then, in one transaction: the snapshot it is
made from is share-locked and must be the project's and ``available`` (a delete of
it then waits and sees this volume); the project's quota is locked and counted
(``quotas.claim_volume``: maxTotalVolumes and maxTotalVolumeGigabytes, 413 overLimit
past them); the volume is written in ``creating`` with its CreateVolume. Any refusal
changes nothing. Choices where the spec is silent (Cinder's, behind Nova's
os-volumes):

* ``availability_zone`` must be one of the zones that exist (those of the
  compute hosts, as for servers), else 400. Without one, a volume made from a
  snapshot goes to the snapshot's volume's zone (Cinder did so), any other to
  ``NIMBUS_API_VOLUME_DEFAULT_ZONE`` (``az1``; Cinder put volumes in its one
  configured storage zone), or the first zone by name if no host is there. A
  zone given with a snapshot must be the snapshot's volume's (Cinder's
  ``cloned_volume_same_az``).
* ``volume_type``: unknown is 404 "Volume type ... could not be found." (Cinder
  answered 404 "Volume type not found."); no type leaves the volume untyped.
* ``imageRef``: an image the project can see (else 404, as Cinder's
  ImageNotFound), ACTIVE and with a file (else 400); the volume gets a copy of
  the image and becomes bootable (the volume service sets ``bootable``).

Delete (202) begins ``deleting`` with the guarded update of
``shared.db.volumes`` from available, error or error_deleting; any other status
is 400 as Cinder said it ("Invalid volume: Volume status must be available or
error, but current status is: in-use"), and so is a volume with snapshots
("Volume still has 1 dependent snapshots"), checked in the same transaction.

Unknown, malformed and other projects' ids are all 404 itemNotFound. Lists page
with ``limit`` and ``marker`` (section 3.6; Nova's os-volumes cut its lists
with ``limit`` and ``offset``), newest first, at most 1000 a page.

Spec contradictions settled here, for the most detailed text (4.4.13.3): the
table of 4.1.13 gives create as ``POST /os-volumes/{volume_id}``, the operation
itself as ``POST /os-volumes`` (and Nova served that); the create example's XML
shows ``status="active"`` for a volume just accepted, which is ``creating``
until the volume service has made it (``shared.volume_states``).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from services.api import quotas
from services.api.keys import POOL, RELAY, SETTINGS
from services.api.queries import images as image_q
from services.api.queries import servers as server_q
from services.api.queries import volumes as q
from services.api.representation import (
    BLOCK_STORAGE,
    View,
    parse_body,
    represented,
    route,
)
from services.api.resources import volume_body as body
from services.api.resources.common import base_url, parse_uuid, principal
from services.api.resources.pagination import (
    Page,
    next_links,
    project_page,
)
from services.api.status_codes import Op, status_for
from services.api.views import volumes as views
from shared import outbox
from shared.contracts import volume as contract
from shared.db import volumes as volume_db
from shared.errors import (
    BadRequest,
    ImageNotFound,
    SnapshotNotFound,
    VolumeNotFound,
    VolumeTypeNotFound,
)
from shared.volume_states import DELETE, SnapshotStatus

log = structlog.get_logger(__name__)


def volume_id_from_path(request: web.Request) -> uuid.UUID:
    raw = request.match_info["volume_id"]
    vid = parse_uuid(raw)
    if vid is None:
        raise VolumeNotFound(raw)
    return vid


async def _page(request: web.Request) -> tuple[list[Any], Page]:
    return await project_page(request, q.marker_position, q.list_page)


@represented
async def list_volumes(request: web.Request) -> View:
    rows, page = await _page(request)
    items = [views.volume(r) for r in rows]
    return View({"volumes": items, **next_links(request, "os-volumes", "volumes", items, page)})


@represented
async def list_volumes_detail(request: web.Request) -> View:
    # Nova's detail view was its summary view; so are the spec's examples.
    rows, page = await _page(request)
    items = [views.volume(r) for r in rows]
    return View({"volumes": items,
                 **next_links(request, "os-volumes/detail", "volumes", items, page)})


@represented
async def show_volume(request: web.Request) -> View:
    vid = volume_id_from_path(request)
    async with request.app[POOL].acquire() as conn:
        row = await q.get(conn, principal(request).project_id, vid)
    if row is None:
        raise VolumeNotFound(vid)
    return View({"volume": views.volume(row)})


async def _image(conn: asyncpg.Connection, project_id: str,
                 image_id: uuid.UUID) -> asyncpg.Record:
    image = await image_q.get_visible(conn, project_id, image_id)
    if image is None:
        raise ImageNotFound(image_id)
    if image["status"] != "ACTIVE":
        raise BadRequest(f"Image {image_id} is not active.")
    if image["location"] is None:
        raise BadRequest(f"Image {image_id} has no data to copy into a volume.")
    return image


async def _zone(conn: asyncpg.Connection, asked: str | None,
                snapshot: asyncpg.Record | None, default: str) -> str:
    """The zone the volume goes to (see the module docstring)."""
    if asked is not None and not await server_q.zone_known(conn, asked):
        raise BadRequest(f"Availability zone '{asked}' is invalid.")
    if snapshot is not None:
        source = snapshot["volume_availability_zone"]
        if asked is not None and asked != source:
            raise BadRequest(f"Volume must be in the same availability zone as the snapshot "
                             f"({source}).")
        return source
    if asked is not None:
        return asked
    if await server_q.zone_known(conn, default):
        return default
    first = await server_q.first_zone(conn)
    if first is None:
        raise BadRequest("No availability zone exists yet (no compute host has reported); "
                         "try again once one has.")
    return first


async def _snapshot(conn: asyncpg.Connection, project_id: str,
                    snapshot_id: uuid.UUID) -> asyncpg.Record:
    snapshot = await q.lock_snapshot(conn, project_id, snapshot_id)
    if snapshot is None:
        raise SnapshotNotFound(snapshot_id)
    if snapshot["status"] != SnapshotStatus.AVAILABLE:
        raise BadRequest(f"Invalid snapshot: snapshot {snapshot_id} must be available to make "
                         f"a volume from it, but its status is {snapshot['status']}.")
    return snapshot


async def create(request: web.Request, raw: dict[str, Any]) -> tuple[asyncpg.Record, str | None]:
    """Create the volume a ``{"volume": {...}}`` body (this API's field names) asks
    for, by every rule of the module docstring; the new row and its type's name.
    The one create of the compute API and the block-storage endpoint."""
    who = principal(request)
    pid, rid = who.project_id, request["request_id"]
    pool, relay = request.app[POOL], request.app[RELAY]
    async with pool.acquire() as conn:
        limits = await quotas.absolute_limits(conn, pid)
        req = body.parse_volume(raw, max_meta=limits["maxServerMeta"])
        vtype = None
        if req.volume_type is not None:
            vtype = await q.find_volume_type(conn, req.volume_type)
            if vtype is None:
                raise VolumeTypeNotFound(req.volume_type)
        image = await _image(conn, pid, req.image_id) if req.image_id is not None else None
        async with conn.transaction():
            snapshot = (await _snapshot(conn, pid, req.snapshot_id)
                        if req.snapshot_id is not None else None)
            size = body.volume_size(
                req.size, snapshot_gb=snapshot["size_gb"] if snapshot else None,
                image_min_disk_gb=image["min_disk_gb"] if image else None,
                image_bytes=image["size_bytes"] if image else None)
            zone = await _zone(conn, req.availability_zone, snapshot,
                               request.app[SETTINGS].api.volume_default_zone)
            # Holds the project's quota lock until commit: a concurrent create
            # of the project counts this volume.
            await quotas.claim_volume(conn, pid, size)
            row = await q.insert(
                conn, id=uuid.uuid4(), project_id=pid, user_id=who.user_id, size_gb=size,
                display_name=req.display_name, display_description=req.display_description,
                volume_type_id=vtype["id"] if vtype else None, availability_zone=zone,
                snapshot_id=req.snapshot_id, image_id=req.image_id, metadata=req.metadata,
                request_id=rid)
            item = await outbox.put(conn, contract.QUEUE,
                                    contract.CreateVolume(volume_id=row["id"]),
                                    request_id=rid, lease_s=relay.lease_s)
    relay.send(item)
    log.info("api.volume_accepted", volume_id=str(row["id"]), size_gb=size, zone=zone,
             snapshot_id=str(req.snapshot_id) if req.snapshot_id else None,
             image_id=str(req.image_id) if req.image_id else None)
    return row, vtype["name"] if vtype else None


@represented
async def create_volume(request: web.Request) -> View:
    pid = principal(request).project_id
    row, type_name = await create(request, await parse_body(request, root="volume"))
    location = f"{base_url(request)}/v2/{pid}/os-volumes/{row['id']}"
    return View({"volume": views.created(row, type_name)},
                status=status_for(request, Op.CREATE_VOLUME),
                headers={"Location": location}, shape=BLOCK_STORAGE)


async def delete(request: web.Request, vid: uuid.UUID) -> None:
    """Begin deleting the caller's volume ``vid`` (see the module docstring); the one
    delete of the compute API and the block-storage endpoint."""
    pid, rid = principal(request).project_id, request["request_id"]
    relay = request.app[RELAY]
    async with request.app[POOL].acquire() as conn, conn.transaction():
        began = await volume_db.begin(conn, vid, pid, DELETE, request_id=rid)
        if began is None:
            current = await q.get(conn, pid, vid)
            if current is None:
                raise VolumeNotFound(vid)
            raise BadRequest(f"Invalid volume: Volume status must be available or error, but "
                             f"current status is: {current['status']}")
        # In this transaction: a snapshot begun meanwhile holds the volume's row
        # until it is written, so this count sees it (and the delete is undone).
        dependent = await volume_db.live_snapshots(conn, vid)
        if dependent:
            raise BadRequest(f"Invalid volume: Volume still has {dependent} dependent snapshots")
        item = await outbox.put(conn, contract.QUEUE, contract.DeleteVolume(volume_id=vid),
                                request_id=rid, lease_s=relay.lease_s)
    relay.send(item)
    log.info("api.volume_delete_accepted", volume_id=str(vid))


@represented
async def delete_volume(request: web.Request) -> View:
    await delete(request, volume_id_from_path(request))
    return View(None, status=202)


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/os-volumes", list_volumes)
    route(router, "POST", "/v2/{project_id}/os-volumes", create_volume)
    route(router, "GET", "/v2/{project_id}/os-volumes/detail", list_volumes_detail)
    route(router, "GET", "/v2/{project_id}/os-volumes/{volume_id}", show_volume)
    route(router, "DELETE", "/v2/{project_id}/os-volumes/{volume_id}", delete_volume)
