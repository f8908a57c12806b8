"""Create server (section 4.4.1.6 and the extensions that extend it).

Everything that can be checked is checked before anything is written; then the
server is written in BUILD(scheduling) with its create action, in one
transaction, and the build is cast to the scheduler. The rest of the server's
life happens in the scheduler, the compute agent and the network service.
"""

from __future__ import annotations

import secrets
import string
import uuid
from typing import Any

import structlog
from aiohttp import web

from services.api.keys import POOL, RPC
from services.api.queries import flavors as flavor_q
from services.api.queries import images as image_q
from services.api.queries import servers as q
from services.api.representation import View, parse_body, represented
from services.api.resources import server_body as body
from services.api.resources.common import base_url, parse_uuid, principal, ref_id
from services.api.views import servers as views
from shared.contracts.common import FlavorSpec, ImageSpec
from shared.contracts.compute import BuildServer, InjectedFile
from shared.contracts.scheduler import ScheduleBuild, SchedulerClient
from shared.db import actions
from shared.db import servers as server_db
from shared.errors import BadRequest, ServiceUnavailable

log = structlog.get_logger(__name__)

_PASSWORD_ALPHABET = string.ascii_letters + string.digits


def _admin_pass() -> str:
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(12))


@represented
async def create_server(request: web.Request) -> View:
    who = principal(request)
    req = body.parse(await parse_body(request, root="server"))
    drive = body.config_drive(req.config_drive)
    user_data = body.user_data(req.user_data)
    files = body.personality(req.personality)
    if str(req.min_count) not in ("1",) or str(req.max_count or 1) != "1":
        raise BadRequest("Creating more than one server per request is not available yet.")
    if req.key_name:
        raise BadRequest("Invalid key_name provided.")
    groups = list(dict.fromkeys(g.name for g in req.security_groups)) or ["default"]

    pool = request.app[POOL]
    async with pool.acquire() as conn:
        flavor = await flavor_q.get(conn, ref_id(req.flavorRef))
        if flavor is None:
            raise BadRequest("Invalid flavorRef provided.")
        image_id = parse_uuid(ref_id(req.imageRef))
        image = await image_q.get_visible(conn, who.project_id, image_id) if image_id else None
        if image is None:
            raise BadRequest("Can not find requested image.")
        if image["status"] != "ACTIVE":
            raise BadRequest(f"Image {image_id} is not active.")
        if flavor["disk_gb"] and flavor["disk_gb"] < image["min_disk_gb"]:
            raise BadRequest("Flavor's disk is too small for requested image.")
        if flavor["ram_mb"] < image["min_ram_mb"]:
            raise BadRequest("Flavor's memory is too small for requested image.")
        if req.availability_zone and not await q.zone_known(conn, req.availability_zone):
            raise BadRequest(f"The requested availability zone is not available: "
                             f"{req.availability_zone}")
        missing = set(groups) - {"default"} - await q.known_groups(conn, who.project_id, groups)
        if missing:
            raise BadRequest(f"Unable to find security_group with name '{sorted(missing)[0]}'")
        network_ids = await _network_ids(conn, who.project_id, req.networks)

        spec = FlavorSpec(id=flavor["id"], name=flavor["name"], ram_mb=flavor["ram_mb"],
                          disk_gb=flavor["disk_gb"], ephemeral_gb=flavor["ephemeral_gb"],
                          swap_mb=flavor["swap_mb"], vcpus=flavor["vcpus"])
        sid = uuid.uuid4()
        async with conn.transaction():
            await q.insert(
                conn, id=sid, project_id=who.project_id, user_id=who.user_id,
                name=req.name.strip(), image_id=image["id"], flavor_id=flavor["id"], flavor=spec,
                availability_zone=req.availability_zone, metadata=req.metadata,
                security_groups=groups, key_name=None, config_drive=drive,
                reservation_id=f"r-{secrets.token_hex(4)}", request_id=request["request_id"])
            await actions.start_action(conn, server_id=sid, project_id=who.project_id,
                                       user_id=who.user_id, action="create",
                                       request_id=request["request_id"])

    admin_pass = _admin_pass()
    build = BuildServer(
        server_id=sid, project_id=who.project_id, user_id=who.user_id, name=req.name.strip(),
        flavor=spec,
        image=ImageSpec(id=image["id"], name=image["name"], min_disk_gb=image["min_disk_gb"],
                        min_ram_mb=image["min_ram_mb"], size_bytes=image["size_bytes"]),
        admin_pass=admin_pass, metadata=req.metadata, security_groups=tuple(groups),
        config_drive=drive, user_data=user_data,
        files=tuple(InjectedFile(path=f.path, contents=f.contents) for f in files),
        network_ids=tuple(network_ids))
    try:
        await SchedulerClient(request.app[RPC]).schedule_build(
            ScheduleBuild(build=build, availability_zone=req.availability_zone))
    except Exception as exc:
        # Not accepted: take the row back so nothing is left in BUILD forever.
        log.error("api.schedule_cast_failed", server_id=str(sid), error=str(exc))
        async with pool.acquire() as conn:
            await server_db.mark_deleted(conn, sid)
        raise ServiceUnavailable("The scheduler cannot be reached; the server was not created.")
    log.info("api.server_accepted", server_id=str(sid), flavor=spec.id, image=str(image["id"]))
    base = base_url(request)
    view = views.created(str(sid), admin_pass, groups, base, who.project_id)
    return View({"server": view}, status=202,
                headers={"Location": f"{base}/v2/{who.project_id}/servers/{sid}"})


async def _network_ids(conn: Any, project_id: str, networks: list[body.NetworkRef]) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for net in networks:
        if net.port:
            raise BadRequest("Booting with a port is not supported; give a network uuid.")
        nid = parse_uuid(net.uuid or "")
        if nid is None:
            raise BadRequest(f"Bad networks format: network uuid {net.uuid!r} is not a UUID.")
        if net.fixed_ip:
            raise BadRequest("Choosing a fixed_ip is not available yet.")
        owner = await conn.fetchval("SELECT project_id FROM networks WHERE id = $1", nid)
        if owner != project_id:
            raise BadRequest(f"Network {nid} could not be found.")
        ids.append(nid)
    return ids
