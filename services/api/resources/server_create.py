"""Create server (section 4.4.1.6) and the extensions that extend it:
os-multiple-create (4.4.15), OS-SCH-HNT scheduler hints (4.4.10), quotas (3.8.1).

Everything that can be checked is checked before anything is written. Then,
in one transaction, the quota says how many servers fit
(``quotas.claim_servers``), the servers are written in BUILD(scheduling)
with their create actions, their build requests (kept to schedule a build
again if its host dies) and their ScheduleBuild messages in the outbox
(``shared.outbox``); the relay sends them to the scheduler after commit, so
a 202 never depends on a message held only in this process's memory, and a
create is accepted even while the broker is down. The server rows go last and
the quota is confirmed under the project's lock just before the commit
(``quotas.confirm_servers``), so creates of one project wait for each other
only that long.
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

import ipaddress
import secrets
import string
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import structlog
from aiohttp import web

from services.api import quotas
from services.api.keys import POOL, RELAY, RPC
from services.api.queries import flavors as flavor_q
from services.api.queries import images as image_q
from services.api.queries import keypairs as keypair_q
from services.api.queries import networks as network_q
from services.api.queries import quotas as quota_q
from services.api.queries import security_groups as group_q
from services.api.queries import servers as q
from services.api.representation import View, parse_body, represented
from services.api.resources import server_body as body
from services.api.resources import server_volumes
from services.api.resources.common import base_url, parse_uuid, principal, ref_id
from services.api.views import servers as views
from shared import outbox
from shared.contracts.common import FlavorSpec
from shared.contracts.compute import BuildServer, InjectedFile
from shared.contracts.network import (
    DeallocatePorts,
    NetworkClient,
    PortRequest,
    ReserveFixedIps,
)
from shared.contracts.scheduler import QUEUE as SCHEDULER_QUEUE
from shared.contracts.scheduler import ScheduleBuild
from shared.db import actions, build_requests
from shared.errors import BadRequest

log = structlog.get_logger(__name__)

_PASSWORD_ALPHABET = string.ascii_letters + string.digits


def admin_password() -> str:
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
        # The caller's own keypair in this project (see resources.keypairs).
        keypair = None
        if req.key_name is not None:
            keypair = await keypair_q.get(conn, who.project_id, who.user_id, req.key_name)
            if keypair is None:
                raise BadRequest("Invalid key_name provided.")
        groups = await group_q.names_for(conn, who.project_id,
                                         [g.name for g in req.security_groups]) or ["default"]

        flavor = await flavor_q.get(conn, ref_id(req.flavorRef))
        if flavor is None:
            raise BadRequest("Invalid flavorRef provided.")
        mappings = server_volumes.parse(raw["server"])
        if mappings.volumes and max_count > 1:
            raise BadRequest("Cannot attach one or more volumes to multiple instances.")
        await server_volumes.check(conn, who.project_id, mappings)
        image = None
        if mappings.boot is None:  # else the root disk is the volume: no image
            image_id = parse_uuid(ref_id(req.imageRef or mappings.image_ref or ""))
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
        port_requests = await _port_requests(conn, who.project_id, req.networks, max_count)
        network_ids = [r.network_id for r in port_requests]
        await _check_hinted_servers(conn, who.project_id, hints)

        spec = FlavorSpec(id=flavor["id"], name=flavor["name"], ram_mb=flavor["ram_mb"],
                          disk_gb=flavor["disk_gb"], ephemeral_gb=flavor["ephemeral_gb"],
                          swap_mb=flavor["swap_mb"], vcpus=flavor["vcpus"])
    name = req.name.strip()
    reservation_id = f"r-{secrets.token_hex(4)}"
    first_sid = uuid.uuid4()  # named before it is written: its fixed IPs are reserved first
    admin_pass = admin_password()
    image_spec = image_q.image_spec(image) if image is not None else None
    # A volume-backed server's root disk is not on its host: it is scheduled with
    # no root disk to claim (as Nova's request spec has root_gb 0).
    build_flavor = spec if image is not None else msgspec.structs.replace(spec, disk_gb=0)
    injected = tuple(InjectedFile(path=f.path, contents=f.contents) for f in files)
    rid, relay = request["request_id"], request.app[RELAY]
    # The reservation is a call to the network service: no pooled connection is
    # held across it.
    async with _fixed_ips_reserved(request, first_sid, port_requests), \
            pool.acquire() as conn, conn.transaction():
        # The named groups stay until these servers are committed: a delete
        # of one waits, then takes it off them too (section 2.3.2).
        held = await group_q.hold_named(conn, who.project_id, groups)
        if missing := set(groups) - {"default"} - held:
            raise BadRequest(f"Unable to find security_group with name '{min(missing)}'")
        count = await quotas.claim_servers(conn, who.project_id, limits, vcpus=spec.vcpus,
                                           ram_mb=spec.ram_mb, min_count=min_count,
                                           max_count=max_count)
        sids = [first_sid, *(uuid.uuid4() for _ in range(count - 1))]
        items = []
        for sid in sids:
            await actions.start_action(conn, server_id=sid, project_id=who.project_id,
                                       user_id=who.user_id, action="create", request_id=rid)
            # The volumes become this server's (in-use) in this transaction.
            block_devices = await server_volumes.take(conn, who.project_id, sid, mappings,
                                                      request_id=rid)
            schedule = ScheduleBuild(build=BuildServer(
                server_id=sid, project_id=who.project_id, user_id=who.user_id, name=name,
                flavor=build_flavor, image=image_spec, block_devices=block_devices, admin_pass=admin_pass, metadata=req.metadata,
                security_groups=tuple(groups), config_drive=drive, user_data=user_data,
                key_name=keypair["name"] if keypair else None,
                key_data=keypair["public_key"] if keypair else None,
                files=injected, network_ids=tuple(network_ids), port_requests=port_requests),
                availability_zone=req.availability_zone, hints=hints.hints)
            # Kept while it builds, to schedule it again if its host dies; and
            # sent through the outbox, so the 202 below never depends on a
            # message that exists only in this process.
            await build_requests.put(conn, sid, schedule)
            items.append(await outbox.put(conn, SCHEDULER_QUEUE, schedule, request_id=rid,
                                          lease_s=relay.lease_s))
        # The server rows last: the first takes the project's quota lock (see
        # quotas.claim_servers), held from here to the commit.
        for sid in sids:
            await q.insert(
                conn, id=sid, project_id=who.project_id, user_id=who.user_id, name=name,
                image_id=image["id"] if image is not None else None, flavor_id=flavor["id"],
                flavor=spec,
                availability_zone=req.availability_zone, metadata=req.metadata,
                security_groups=groups,
                key_name=keypair["name"] if keypair else None, config_drive=drive,
                reservation_id=reservation_id, request_id=rid)
        await quotas.confirm_servers(conn, who.project_id, vcpus=spec.vcpus,
                                     ram_mb=spec.ram_mb, count=len(sids))
    relay.send(*items)
    first = sids[0]
    log.info("api.server_accepted", server_id=str(first), flavor=spec.id,
             image=str(image["id"]) if image is not None else None,
             boot_volume=str(mappings.boot.volume_id) if mappings.boot else None,
             count=len(sids), reservation_id=reservation_id)
    base = base_url(request)
    view = views.created(str(first), admin_pass, groups, base, who.project_id)
    return View({"server": view}, status=202,
                headers={"Location": f"{base}/v2/{who.project_id}/servers/{first}"})


async def _check_hinted_servers(conn: Any, project_id: str, hints: body.SchedulerHints) -> None:
    """Every server ``same_host`` or ``different_host`` names must be a live server
    of the caller's project (``near`` may name any: it is a preference)."""
    if not hints.servers:
        return
    found = await quota_q.live_server_ids(conn, project_id, {sid for _, sid in hints.servers})
    for hint, sid in hints.servers:
        if sid not in found:
            raise BadRequest(f"Scheduler hint {hint}: server {sid} could not be found.")


async def _port_requests(conn: Any, project_id: str, networks: list[body.NetworkRef],
                         max_count: int) -> tuple[PortRequest, ...]:
    """The ``networks`` of create (4.4.1.6) as the ports to make, checked.

    Each entry names a network of the project by ``uuid`` and may name a
    ``fixed_ip`` in it (one server only: an address cannot go to several, as in
    Nova). Without entries the server goes on the project's default network,
    which section 2.3.1 allows only while it is the project's one network.
    Whether a fixed IP is free and inside the subnet is the network service's
    to say, when it is reserved (``_fixed_ips_reserved``).
    """
    if not networks:
        if await network_q.count(conn, project_id) > 1:
            raise BadRequest("Multiple possible networks found, use a Network ID to be more "
                             "specific.")
        return ()
    requests: list[PortRequest] = []
    for net in networks:
        if net.port:
            raise BadRequest("Booting with a port is not supported; give a network uuid.")
        nid = parse_uuid((net.uuid or "").strip())
        if nid is None:
            raise BadRequest(f"Bad networks format: network uuid {net.uuid!r} is not a UUID.")
        if any(r.network_id == nid for r in requests):
            raise BadRequest(f"Network {nid} is duplicated.")
        fixed_ip = None
        if net.fixed_ip is not None and net.fixed_ip.strip():
            try:
                fixed_ip = str(ipaddress.IPv4Address(net.fixed_ip.strip()))
            except ValueError:
                raise BadRequest(f"Invalid fixed IP address ({net.fixed_ip})") from None
        requests.append(PortRequest(network_id=nid, fixed_ip=fixed_ip))
    owned = await network_q.owned(conn, project_id, [r.network_id for r in requests])
    for r in requests:
        if r.network_id not in owned:  # another project's is not told apart
            raise BadRequest(f"Network {r.network_id} could not be found.")
    if max_count > 1 and any(r.fixed_ip for r in requests):
        raise BadRequest("A fixed_ip can be given to one server only: max_count must be 1.")
    return tuple(requests)


@asynccontextmanager
async def _fixed_ips_reserved(request: web.Request, server_id: uuid.UUID,
                              requests: tuple[PortRequest, ...]) -> AsyncIterator[None]:
    """Hold the fixed IPs ``requests`` name for the server about to be written.

    The network service reserves them in one transaction (400 when one is taken
    or not in its network's subnet), so no other server can get them before this
    one is built; if the server is not written after all, they are given back.
    """
    if not any(r.fixed_ip for r in requests):
        yield
        return
    network = NetworkClient(request.app[RPC], request_id=request["request_id"])
    await network.reserve_fixed_ips(ReserveFixedIps(
        server_id=server_id, project_id=principal(request).project_id, requests=requests))
    try:
        yield
    except BaseException:
        await _release_fixed_ips(request, server_id, requests)
        raise


async def _release_fixed_ips(request: web.Request, server_id: uuid.UUID,
                             requests: tuple[PortRequest, ...]) -> None:
    """Give back what ``_fixed_ips_reserved`` held for a server that will not be built
    (should this fail, the network service frees it later)."""
    if not any(r.fixed_ip for r in requests):
        return
    try:
        await NetworkClient(request.app[RPC], request_id=request["request_id"]).deallocate_ports(
            DeallocatePorts(server_id=server_id))
    except Exception as exc:
        log.warning("api.fixed_ip_release_failed", server_id=str(server_id), error=str(exc))
