"""Floating IPs (section 4.4.8, extension os-floating-ips): list, allocate, get,
deallocate; and the pools they come from (``GET os-floating-ip-pools``).

Reads come straight from PostgreSQL; allocation and deallocation are done by
the network service (``shared.contracts.floating_ips``), which owns the pool,
counts the project's floating IPs against maxTotalFloatingIps under a
per-project lock (413 overLimit past it) and disassociates an address before
giving it back. The association actions live in ``server_floating_ips``.

Allocate takes no body (section 4.4.8.4) or ``{"pool": "<name>"}`` as Nova and
its clients send (openstacksdk posts ``{"pool": ...}``; an XML body is
``<pool>name</pool>``); an unknown pool is 404, as in Nova, and so is an
exhausted one ("No more floating IPs in pool ..."). Allocate answers 200 as the
spec says; deallocate 202.

An id is an integer drawn anew at each allocation, so a stale id never names a
later allocation of the same address; another project's id is 404.

``os-floating-ip-pools`` is not in the spec's list, but Nova served it next to
os-floating-ips and openstacksdk asks it for a pool's name when none is given.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import structlog
from aiohttp import hdrs, web

from services.api import quotas
from services.api.keys import POOL, RPC
from services.api.queries import floating_ips as q
from services.api.representation import View, decode_body, represented, route
from services.api.resources.common import parse_digits, principal
from services.api.views import floating_ips as views
from shared.contracts.floating_ips import (
    AllocateFloatingIp,
    DeallocateFloatingIp,
    FloatingIp,
    FloatingIpClient,
    FloatingIpNotFound,
)
from shared.errors import BadRequest

log = structlog.get_logger(__name__)

# ids are bigint in the database; anything else names no floating IP.
_MAX_ID = 2**63 - 1


def _floating_ip_id(request: web.Request) -> int:
    raw = request.match_info["floating_ip_id"]
    fid = parse_digits(raw, ceiling=_MAX_ID + 1)
    if fid is None or not 0 < fid <= _MAX_ID:
        raise FloatingIpNotFound(f"Floating IP not found for ID {raw}.")
    return fid


async def _pool(request: web.Request) -> str | None:
    """The pool an allocate body names, None for the configured one."""
    data = await request.read()
    if not data.strip():
        return None
    body: dict[str, Any] = decode_body(data, request.headers.get(hdrs.CONTENT_TYPE))
    pool = body.get("pool")
    if pool is None:
        return None
    if not isinstance(pool, str) or not pool.strip():
        raise BadRequest("pool must be the name of a floating IP pool.")
    return pool.strip()


@represented
async def list_floating_ips(request: web.Request) -> View:
    pid = principal(request).project_id
    async with request.app[POOL].acquire() as conn:
        rows = await q.list_for_project(conn, pid)
    return View({"floating_ips": [views.floating_ip(r) for r in rows]})


async def allocate(request: web.Request, project_id: str, pool: str | None) -> FloatingIp:
    """Have the network service give the project an address of ``pool`` (None: the
    configured one) within its maxTotalFloatingIps (the compute API's allocate
    and the network endpoint's create)."""
    async with request.app[POOL].acquire() as conn:
        limit = (await quotas.absolute_limits(conn, project_id))["maxTotalFloatingIps"]
    return await FloatingIpClient(request.app[RPC], request_id=request["request_id"]).allocate(
        AllocateFloatingIp(project_id=project_id, request_key=uuid.uuid4(), pool=pool,
                           quota=limit))


@represented
async def allocate_floating_ip(request: web.Request) -> View:
    fip = await allocate(request, principal(request).project_id, await _pool(request))
    log.info("api.floating_ip_allocated", id=fip.id, address=fip.address)
    return View({"floating_ip": views.floating_ip(msgspec.to_builtins(fip))})


@represented
async def show_floating_ip(request: web.Request) -> View:
    fid = _floating_ip_id(request)
    async with request.app[POOL].acquire() as conn:
        row = await q.get(conn, principal(request).project_id, fid)
    if row is None:
        raise FloatingIpNotFound(f"Floating IP not found for ID {fid}.")
    return View({"floating_ip": views.floating_ip(row)})


@represented
async def deallocate_floating_ip(request: web.Request) -> View:
    fid = _floating_ip_id(request)
    await FloatingIpClient(request.app[RPC], request_id=request["request_id"]).deallocate(DeallocateFloatingIp(
        project_id=principal(request).project_id, floating_ip_id=fid))
    log.info("api.floating_ip_deallocated", id=fid)
    return View(None, status=202)


@represented
async def list_pools(request: web.Request) -> View:
    return View(views.pools(await FloatingIpClient(request.app[RPC], request_id=request["request_id"]).pools()))


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/os-floating-ips", list_floating_ips)
    route(router, "POST", "/v2/{project_id}/os-floating-ips", allocate_floating_ip)
    route(router, "GET", "/v2/{project_id}/os-floating-ips/{floating_ip_id}", show_floating_ip)
    route(router, "DELETE", "/v2/{project_id}/os-floating-ips/{floating_ip_id}",
          deallocate_floating_ip)
    route(router, "GET", "/v2/{project_id}/os-floating-ip-pools", list_pools)
