"""Volume snapshots (section 4.4.13.6-10, extension os-volumes): create, list, list
detail, show, delete. Bodies and views are the spec's snake_case ones
(``views.volumes.snapshot``), in XML in the block storage namespace.

Create (202; 200 as Nova under the ``nova`` profile, ``status_codes``) takes the
project's volume (404 otherwise) share-locked, so that a delete or an attach of it
waits for the snapshot's row; the volume must be ``available``, or ``in-use`` with
``force`` (Cinder's rule, which Nova passed on: 400 otherwise). The snapshot is
written in ``creating`` with its size (the volume's) and, in the same transaction,
its CreateSnapshot in the outbox; the volume service copies the volume and makes it
``available``.

Delete (202) begins ``deleting`` with the guarded update of ``shared.db.volumes``
from available, error or error_deleting (400 otherwise, as Cinder); a snapshot
a volume is still being made from is refused too (400), checked in the same
transaction, while create volume holds the snapshot share-locked until its
volume's row is written. Unknown, malformed and other projects' ids are 404.

The spec's create example answers ``status: available`` at once and its curl
line posts to ``os-volume-type``; we answer ``creating`` (the copy is made by
the volume service after the 202) at ``POST /os-snapshots``, the operation's path.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from services.api.keys import POOL, RELAY
from services.api.queries import volumes as q
from services.api.representation import View, parse_body, represented, route
from services.api.resources import volume_body as body
from services.api.resources.common import parse_uuid, principal
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
from shared.errors import BadRequest, SnapshotNotFound, VolumeNotFound
from shared.volume_states import SNAPSHOT_DELETE, SNAPSHOT_SOURCE_STATUSES, VolumeStatus

log = structlog.get_logger(__name__)


def snapshot_id_from_path(request: web.Request) -> uuid.UUID:
    """The snapshot id of the path; 404 for one that is not a UUID."""
    raw = request.match_info["snapshot_id"]
    sid = parse_uuid(raw)
    if sid is None:
        raise SnapshotNotFound(raw)
    return sid


def check_source(volume_id: uuid.UUID, status: str, *, force: bool) -> None:
    """A volume in ``status`` may be snapshotted (``force`` given or not); else 400."""
    if status == VolumeStatus.IN_USE and not force:
        raise BadRequest(f"Invalid volume: Volume {volume_id} is in-use: use force to snapshot "
                         "a volume attached to a server.")
    if status not in SNAPSHOT_SOURCE_STATUSES:
        raise BadRequest(f"Invalid volume: Volume {volume_id} must be available to snapshot "
                         f"it, but its status is {status}.")


async def _page(request: web.Request) -> tuple[list[Any], Page]:
    return await project_page(request, q.snapshot_marker_position, q.snapshot_page)


@represented
async def list_snapshots(request: web.Request) -> View:
    rows, page = await _page(request)
    items = [views.snapshot(r) for r in rows]
    return View({"snapshots": items,
                 **next_links(request, "os-snapshots", "snapshots", items, page)})


@represented
async def list_snapshots_detail(request: web.Request) -> View:
    rows, page = await _page(request)
    items = [views.snapshot(r) for r in rows]
    return View({"snapshots": items,
                 **next_links(request, "os-snapshots/detail", "snapshots", items, page)})


@represented
async def show_snapshot(request: web.Request) -> View:
    sid = snapshot_id_from_path(request)
    async with request.app[POOL].acquire() as conn:
        row = await q.get_snapshot(conn, principal(request).project_id, sid)
    if row is None:
        raise SnapshotNotFound(sid)
    return View({"snapshot": views.snapshot(row)})


async def create(request: web.Request, req: body.SnapshotRequest) -> asyncpg.Record:
    """Begin the snapshot ``req`` asks for (see the module docstring); the new row.
    The one snapshot create of the compute API and the block-storage endpoint."""
    who = principal(request)
    pid, rid = who.project_id, request["request_id"]
    relay = request.app[RELAY]
    async with request.app[POOL].acquire() as conn, conn.transaction():
        vol = await q.lock_for_snapshot(conn, pid, req.volume_id)
        if vol is None:
            raise VolumeNotFound(req.volume_id)
        check_source(req.volume_id, vol["status"], force=req.force)
        row = await q.insert_snapshot(
            conn, id=uuid.uuid4(), project_id=pid, user_id=who.user_id, volume_id=req.volume_id,
            size_gb=vol["size_gb"], display_name=req.display_name,
            display_description=req.display_description, request_id=rid)
        item = await outbox.put(conn, contract.QUEUE,
                                contract.CreateSnapshot(snapshot_id=row["id"]),
                                request_id=rid, lease_s=relay.lease_s)
    relay.send(item)
    log.info("api.snapshot_accepted", snapshot_id=str(row["id"]), volume_id=str(req.volume_id),
             force=req.force)
    return row


@represented
async def create_snapshot(request: web.Request) -> View:
    req = body.parse_snapshot(await parse_body(request, root="snapshot"))
    return View({"snapshot": views.snapshot(await create(request, req))},
                status=status_for(request, Op.CREATE_SNAPSHOT))


async def delete(request: web.Request, sid: uuid.UUID) -> None:
    """Begin deleting the caller's snapshot ``sid`` (see the module docstring)."""
    pid, rid = principal(request).project_id, request["request_id"]
    relay = request.app[RELAY]
    async with request.app[POOL].acquire() as conn, conn.transaction():
        began = await volume_db.begin_snapshot_delete(conn, sid, pid, request_id=rid,
                                                      allowed=SNAPSHOT_DELETE.allowed_from)
        if began is None:
            current = await q.get_snapshot(conn, pid, sid)
            if current is None:
                raise SnapshotNotFound(sid)
            raise BadRequest(f"Invalid snapshot: Snapshot status must be available or error, "
                             f"but current status is: {current['status']}")
        if await q.volumes_being_made_from(conn, sid):
            raise BadRequest(f"Invalid snapshot: a volume is being made from snapshot {sid}; "
                             "delete it once that volume is available.")
        item = await outbox.put(conn, contract.QUEUE, contract.DeleteSnapshot(snapshot_id=sid),
                                request_id=rid, lease_s=relay.lease_s)
    relay.send(item)
    log.info("api.snapshot_delete_accepted", snapshot_id=str(sid))


@represented
async def delete_snapshot(request: web.Request) -> View:
    await delete(request, snapshot_id_from_path(request))
    return View(None, status=202)


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/os-snapshots", list_snapshots)
    route(router, "POST", "/v2/{project_id}/os-snapshots", create_snapshot)
    route(router, "GET", "/v2/{project_id}/os-snapshots/detail", list_snapshots_detail)
    route(router, "GET", "/v2/{project_id}/os-snapshots/{snapshot_id}", show_snapshot)
    route(router, "DELETE", "/v2/{project_id}/os-snapshots/{snapshot_id}", delete_snapshot)
