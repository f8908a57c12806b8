"""Create server (section 4.4.1.6) and the extensions that extend it:
os-multiple-create (4.4.15), OS-SCH-HNT scheduler hints (4.4.10), quotas (3.8.1).

Everything that can be checked is checked before anything is written. Then,
in one transaction, the project's quota is locked and counted
(``quotas.claim_servers``) and the servers are written in BUILD(scheduling)
with their create actions; only then is each build cast to the scheduler.
The rest of each server's life happens in the scheduler, the compute agent
and the network service.

Multiple create: ``min_count`` to ``max_count`` servers, as many as the quota
allows; fewer than ``min_count`` is 413 overLimit and nothing is created. They
share the request's reservation id and admin password (as in Nova, so that the
password the response shows opens every one of them), and all have the same
name: sections 2.1.4 and 4.4.1.6 say so, while 4.4.15 says the names get an
incrementing number; we follow the former (and Nova). The response is the
first server, with its ``Location``, as 4.4.15's example shows.
"""

from __future__ import annotations

import secrets
import string
import uuid
from typing import Any

import structlog
from aiohttp import web

from services.api import quotas
from services.api.keys import POOL, RPC
from services.api.queries import flavors as flavor_q
from services.api.queries import images as image_q
from services.api.queries import quotas as quota_q
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
    raw = await parse_body(request, root="server")
    hints = body.scheduler_hints(raw)

    pool = request.app[POOL]
    async with pool.acquire() as conn:
        limits = await quotas.absolute_limits(conn, who.project_id)
        req = body.parse(raw, max_meta=limits["maxServerMeta"])
        min_count, max_count = body.counts(req)
        drive = body.config_drive(req.config_drive)
        user_data = body.user_data(req.user_data)
        files = body.personality(req.personality, max_files=limits["maxPersonality"],
                                 max_size=limits["maxPersonalitySize"])
        if req.key_name:
            raise BadRequest("Invalid key_name provided.")
        groups = list(dict.fromkeys(g.name for g in req.security_groups)) or ["default"]

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
            raise BadRequest(f"Unable to find security_group with name '{min(missing)}'")
        network_ids = await _network_ids(conn, who.project_id, req.networks)
        await _check_hinted_servers(conn, who.project_id, hints)

        spec = FlavorSpec(id=flavor["id"], name=flavor["name"], ram_mb=flavor["ram_mb"],
                          disk_gb=flavor["disk_gb"], ephemeral_gb=flavor["ephemeral_gb"],
                          swap_mb=flavor["swap_mb"], vcpus=flavor["vcpus"])
        name = req.name.strip()
        reservation_id = f"r-{secrets.token_hex(4)}"
        async with conn.transaction():
            # Holds the project's quota lock until commit: a concurrent create
            # of the project counts these servers.
            count = await quotas.claim_servers(conn, who.project_id, vcpus=spec.vcpus,
                                               ram_mb=spec.ram_mb, min_count=min_count,
                                               max_count=max_count)
            sids = [uuid.uuid4() for _ in range(count)]
            for sid in sids:
                await q.insert(
                    conn, id=sid, project_id=who.project_id, user_id=who.user_id, name=name,
                    image_id=image["id"], flavor_id=flavor["id"], flavor=spec,
                    availability_zone=req.availability_zone, metadata=req.metadata,
                    security_groups=groups, key_name=None, config_drive=drive,
                    reservation_id=reservation_id, request_id=request["request_id"])
                await actions.start_action(conn, server_id=sid, project_id=who.project_id,
                                           user_id=who.user_id, action="create",
                                           request_id=request["request_id"])

    admin_pass = _admin_pass()
    image_spec = ImageSpec(id=image["id"], name=image["name"], min_disk_gb=image["min_disk_gb"],
                           min_ram_mb=image["min_ram_mb"], size_bytes=image["size_bytes"])
    injected = tuple(InjectedFile(path=f.path, contents=f.contents) for f in files)
    scheduler = SchedulerClient(request.app[RPC])
    cast = 0
    try:
        for sid in sids:
            build = BuildServer(
                server_id=sid, project_id=who.project_id, user_id=who.user_id, name=name,
                flavor=spec, image=image_spec, admin_pass=admin_pass, metadata=req.metadata,
                security_groups=tuple(groups), config_drive=drive, user_data=user_data,
                files=injected, network_ids=tuple(network_ids))
            await scheduler.schedule_build(ScheduleBuild(
                build=build, availability_zone=req.availability_zone, hints=hints.hints))
            cast += 1
    except Exception as exc:
        # Not accepted: take back the rows not handed over, so nothing is left
        # in BUILD forever. Servers already cast go on building; if there are
        # any, the create stands with fewer servers (the first one is answered).
        log.error("api.schedule_cast_failed", server_id=str(sids[cast]), error=str(exc),
                  cast=cast, count=len(sids))
        async with pool.acquire() as conn:
            for sid in sids[cast:]:
                await server_db.mark_deleted(conn, sid)
        if cast == 0:
            raise ServiceUnavailable(
                "The scheduler cannot be reached; the server was not created.") from None
    first = sids[0]
    log.info("api.server_accepted", server_id=str(first), flavor=spec.id, image=str(image["id"]),
             count=cast, reservation_id=reservation_id)
    base = base_url(request)
    view = views.created(str(first), admin_pass, groups, base, who.project_id)
    return View({"server": view}, status=202,
                headers={"Location": f"{base}/v2/{who.project_id}/servers/{first}"})


async def _check_hinted_servers(conn: Any, project_id: str, hints: body.SchedulerHints) -> None:
    """Every server a hint names must be a live server of the caller's project."""
    if not hints.servers:
        return
    found = await quota_q.live_server_ids(conn, project_id, {sid for _, sid in hints.servers})
    for hint, sid in hints.servers:
        if sid not in found:
            raise BadRequest(f"Scheduler hint {hint}: server {sid} could not be found.")


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
