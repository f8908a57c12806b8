"""os-services (Nova's Services extension, with Icehouse's disabled reason and
Juno's ids): list, enable, disable, disable with a reason; admin only.

One ``nova-compute`` service per compute agent (``compute_hosts``, see
``views.compute_hosts``); Nimbus's control services keep no heartbeat rows, so
none are listed. Disabling a service sets ``compute_hosts.disabled``, which the
scheduler honours (``shared.db.hosts.live_hosts`` leaves disabled hosts out) and
the availability zones show. Faults as Nova's: 404 ``Unknown service`` for a
host or binary that is not a compute agent, 400 for a body without them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.api.keys import POOL
from services.api.representation import View, parse_body, represented, route
from services.api.resources.common import compute_hosts, require_admin
from services.api.views import compute_hosts as views
from shared.db import hosts
from shared.errors import BadRequest, NotFound

_POLICY = "compute_extension:services"

MAX_REASON_LENGTH = 255


@represented
async def list_services(request: web.Request) -> View:
    require_admin(request, _POLICY)
    host, binary = request.query.get("host"), request.query.get("binary")
    async with request.app[POOL].acquire() as conn:
        every = await compute_hosts(request, conn)
    services = [views.service(h) for h in every]
    services = [s for s in services if (host is None or s["host"] == host)
                and (binary is None or s["binary"] == binary)]
    return View({"services": services})


def _target(body: dict[str, Any]) -> tuple[str, str]:
    host, binary = body.get("host"), body.get("binary")
    if not isinstance(host, str) or not isinstance(binary, str) or not host or not binary:
        raise BadRequest("Invalid attribute in the request: host and binary are required.")
    return host, binary


def _reason(body: dict[str, Any]) -> str:
    reason = body.get("disabled_reason")
    if not isinstance(reason, str):
        raise BadRequest("Missing disabled reason field")
    if not 1 <= len(reason.strip()) <= MAX_REASON_LENGTH:
        raise BadRequest(f"Disabled reason must be 1 to {MAX_REASON_LENGTH} characters.")
    return reason.strip()


async def _set(request: web.Request, disabled: bool, with_reason: bool) -> View:
    require_admin(request, _POLICY)
    body = await parse_body(request)
    if isinstance(body.get("service"), dict):  # the XML root, or a wrapped JSON body
        body = body["service"]
    host, binary = _target(body)
    reason = _reason(body) if with_reason else None
    found = False
    if binary == views.COMPUTE_BINARY:
        async with request.app[POOL].acquire() as conn:
            found = await hosts.set_disabled(conn, host, disabled, reason)
    if not found:
        raise NotFound("Unknown service")
    service: dict[str, Any] = {"host": host, "binary": binary,
                               "status": "disabled" if disabled else "enabled"}
    if with_reason:
        service["disabled_reason"] = reason
    return View({"service": service})


@represented
async def enable_service(request: web.Request) -> View:
    return await _set(request, False, False)


@represented
async def disable_service(request: web.Request) -> View:
    return await _set(request, True, False)


@represented
async def disable_with_reason(request: web.Request) -> View:
    return await _set(request, True, True)


def setup(router: web.UrlDispatcher) -> None:
    base = "/v2/{project_id}/os-services"
    route(router, "GET", base, list_services)
    route(router, "PUT", base + "/enable", enable_service)
    route(router, "PUT", base + "/disable", disable_service)
    route(router, "PUT", base + "/disable-log-reason", disable_with_reason)
