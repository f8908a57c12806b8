"""Volume attachments (section 4.4.13.11-14, extension os-volumes):
``/servers/{server_id}/os-volume_attachments``: attach, list, show, detach.

Attach (202; 200 as Nova under the ``nova`` profile, ``status_codes``) takes
``{"volumeAttachment": {"volumeId": ..., "device": ...}}``; ``device`` is optional
(absent, empty or ``"auto"``: the next free ``/dev/vdX`` after the root disk
``/dev/vda``, as Nova's compute chose it) and is checked as Nova checked it. Then,
in one transaction, the volume goes ``available`` -> ``attaching`` to the server (a
guarded update: two attaches of one volume cannot both win), the instance action
``attach_volume`` is recorded and the AttachVolume message goes into the outbox for
the server's host, which plugs the volume into the guest and ends it ``in-use``
(``compute_agent.volumes``). Detach (202) is the same with ``in-use`` ->
``detaching`` and DetachVolume.

Faults, as Nova answered them where the spec is silent:

* an unknown server, or another project's: 404; an unknown volume, or another
  project's: 404 (attach) — and a volume not attached to this server: 404
  (show, detach);
* a volume that is not ``available`` (attach) or not ``in-use`` (detach): 400
  badRequest (Nova passed Cinder's InvalidVolume on as 400), and so is
  detaching the server's root volume (boot from volume) or a device name Nova
  would refuse;
* a server that is not ACTIVE or SHUTOFF, or has a task in flight: 409
  conflictingRequest (Nova's instance state check);
* a server whose host counts as down: 503; a host that cannot attach: 501.

A volume's ``attachments`` (os-volumes), these attachments and the server's
``os-extended-volumes:volumes_attached`` are all read from the volume's row, so
they always agree.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from aiohttp import web

from services.api.keys import POOL, RELAY, SETTINGS
from services.api.queries import servers as server_q
from services.api.representation import View, parse_body, represented, route
from services.api.resources.common import load_server, parse_uuid, principal
from services.api.resources.server_tasks import conflict_message, require_capability
from services.api.status_codes import Op, status_for
from shared import outbox
from shared.contracts.compute import AttachVolume, BlockDevice, DetachVolume, host_queue
from shared.db import actions, hosts
from shared.db import volumes as volume_db
from shared.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from shared.volume_states import DETACH, VolumeStatus

log = structlog.get_logger(__name__)

ROOT_DEVICE = "/dev/vda"

# Nova's device name check (block_device.match_device / validate_device_name).
_DEVICE = re.compile(r"^/dev/x?[a-z]?d?[a-z]+[0-9]*$")

# The states a server may have a volume attached or detached in (Nova allowed
# ACTIVE, PAUSED, STOPPED, SUSPENDED, SHELVED...; of those we have two), with
# no task in flight.
_ATTACHABLE = ("active", "stopped")


class VolumeNotFound(NotFound):
    pass


class VolumeNotAttached(NotFound):
    pass


def view(row: asyncpg.Record) -> dict[str, Any]:
    """One attachment, as 4.4.13.11-13 show it (``id`` is the volume's, as in Nova)."""
    vid = str(row["id"])
    return {"device": row["device"], "serverId": str(row["server_id"]), "id": vid,
            "volumeId": vid}


def _volume_id(raw: object) -> UUID:
    vid = parse_uuid(raw) if isinstance(raw, str) else None
    if vid is None:
        raise VolumeNotFound(f"Volume {raw} could not be found.")
    return vid


async def _attached(request: web.Request, server: asyncpg.Record) -> asyncpg.Record:
    """The volume the path names, attached to ``server`` (404 otherwise)."""
    raw = request.match_info["volume_id"]
    vid = parse_uuid(raw)
    vol = None
    if vid is not None:
        async with request.app[POOL].acquire() as conn:
            vol = await volume_db.get(conn, vid)
    if vol is None or vol["deleted_at"] is not None or vol["server_id"] != server["id"]:
        raise VolumeNotAttached(f"Volume {raw} is not attached to instance {server['id']}.")
    return vol


def choose_device(wanted: Any, taken: set[str]) -> str:
    """The device a new attachment gets: ``wanted`` checked, or the next free one."""
    if wanted is not None and not isinstance(wanted, str):
        raise BadRequest("device must be a string such as /dev/vdb.")
    wanted = (wanted or "").strip()
    if wanted and wanted != "auto":
        device = wanted if wanted.startswith("/dev/") else f"/dev/{wanted}"
        if not _DEVICE.match(device) or len(device) > 32:
            raise BadRequest(f"The supplied device path ({wanted}) is invalid.")
        if device in taken:
            raise BadRequest(f"The supplied device path ({wanted}) is in use.")
        return device
    for letter in "bcdefghijklmnopqrstuvwxyz":
        if (device := f"/dev/vd{letter}") not in taken:
            return device
    raise BadRequest("The instance has no free device name left for another volume.")


async def _ready(conn: asyncpg.Connection, request: web.Request, server: asyncpg.Record,
                 action: str) -> str:
    """The server's host, once the server may have volumes changed (409/503/501)."""
    if server["vm_state"] not in _ATTACHABLE or server["task_state"] is not None \
            or server["host"] is None:
        raise Conflict(conflict_message(action, server["id"], server))
    host = server["host"]
    if await hosts.is_down(conn, host, request.app[SETTINGS].api.service_down_time_s):
        raise ServiceUnavailable(f"The compute host of instance {server['id']} is not "
                                 f"responding; cannot '{action}' it now, try again later.")
    await require_capability(conn, server, action)
    return host


@represented
async def attach(request: web.Request) -> View:
    who = principal(request)
    server = await load_server(request)
    raw = await parse_body(request, root="volumeAttachment")
    body = raw.get("volumeAttachment")
    if not isinstance(body, dict):
        raise BadRequest("volumeAttachment must be an object.")
    if body.get("volumeId") is None:
        raise BadRequest("volumeId must be given.")
    vid = _volume_id(body.get("volumeId"))
    sid, rid = server["id"], request["request_id"]
    pool, relay = request.app[POOL], request.app[RELAY]
    async with pool.acquire() as conn:
        host = await _ready(conn, request, server, "attach_volume")
        async with conn.transaction():
            vol = await volume_db.get(conn, vid)
            if vol is None or vol["deleted_at"] is not None or vol["project_id"] != who.project_id:
                raise VolumeNotFound(f"Volume {vid} could not be found.")
            taken = {ROOT_DEVICE} | {v["device"] for v in await volume_db.of_server(conn, sid)}
            device = choose_device(body.get("device"), taken)
            connection = volume_db.connection_of(vol)
            began = None
            if vol["status"] == VolumeStatus.AVAILABLE and connection is not None:
                began = await volume_db.begin_attach(conn, vid, who.project_id, sid, device,
                                                     request_id=rid)
            if began is None:
                raise BadRequest(f"Invalid volume: volume {vid} status must be 'available'; "
                                 f"it is '{vol['status']}'.")
            # The server may have moved on since it was read: the attach needs it
            # as it was (the agent's guard checks again when it runs).
            now = await server_q.get(conn, who.project_id, sid)
            if now is None or now["vm_state"] not in _ATTACHABLE or now["task_state"] is not None:
                raise Conflict(conflict_message("attach_volume", sid, now))
            await actions.start_action(conn, server_id=sid, project_id=who.project_id,
                                       user_id=who.user_id, action="attach_volume",
                                       request_id=rid)
            msg = AttachVolume(server_id=sid, device=BlockDevice(
                volume_id=vid, device=device, connection=connection))
            item = await outbox.put(conn, host_queue(host), msg, request_id=rid,
                                    lease_s=relay.lease_s)
    relay.send(item)
    log.info("api.volume_attach", server_id=str(sid), volume_id=str(vid), device=device,
             host=host)
    return View({"volumeAttachment": view(began)}, status=status_for(request, Op.ATTACH_VOLUME))


@represented
async def list_attachments(request: web.Request) -> View:
    server = await load_server(request)
    async with request.app[POOL].acquire() as conn:
        rows = await volume_db.of_server(conn, server["id"])
    return View({"volumeAttachments": [view(r) for r in rows]})


@represented
async def show_attachment(request: web.Request) -> View:
    server = await load_server(request)
    return View({"volumeAttachment": view(await _attached(request, server))})


@represented
async def detach(request: web.Request) -> View:
    who = principal(request)
    server = await load_server(request)
    vol = await _attached(request, server)
    sid, vid, rid = server["id"], vol["id"], request["request_id"]
    if vol["boot"]:
        raise BadRequest(f"Volume {vid} is the root disk of instance {sid}; it cannot be "
                         "detached.")
    pool, relay = request.app[POOL], request.app[RELAY]
    async with pool.acquire() as conn:
        host = await _ready(conn, request, server, "detach_volume")
        async with conn.transaction():
            began = await volume_db.begin(conn, vid, who.project_id, DETACH, request_id=rid)
            if began is None or began["server_id"] != sid:
                raise BadRequest(f"Invalid volume: volume {vid} status must be 'in-use'; "
                                 f"it is '{vol['status']}'.")
            await actions.start_action(conn, server_id=sid, project_id=who.project_id,
                                       user_id=who.user_id, action="detach_volume",
                                       request_id=rid)
            item = await outbox.put(conn, host_queue(host),
                                    DetachVolume(server_id=sid, volume_id=vid),
                                    request_id=rid, lease_s=relay.lease_s)
    relay.send(item)
    log.info("api.volume_detach", server_id=str(sid), volume_id=str(vid), host=host)
    return View(None, status=202)


def setup(router: web.UrlDispatcher) -> None:
    base = "/v2/{project_id}/servers/{server_id}/os-volume_attachments"
    route(router, "POST", base, attach)
    route(router, "GET", base, list_attachments)
    route(router, "GET", base + "/{volume_id}", show_attachment)
    route(router, "DELETE", base + "/{volume_id}", detach)
