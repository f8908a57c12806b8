"""Request id and authentication, around every compute API request."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from services.api.identity import validate_token
from services.api.keys import POOL
from shared.errors import Unauthorized
from shared.logging import bind_request_id, new_request_id

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = structlog.get_logger(__name__)

# Paths anyone may read: version discovery, the health check and the metrics.
_PUBLIC = re.compile(r"^/(?:v2/?)?(?:\.(?:json|xml))?$|^/healthz$|^/metrics$")


@web.middleware
async def request_id_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = new_request_id()
    bind_request_id(rid)
    request["request_id"] = rid
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # a fault middleware inside renders most of these
        exc.headers["X-Compute-Request-Id"] = exc.headers["X-Openstack-Request-Id"] = rid
        raise
    response.headers["X-Compute-Request-Id"] = response.headers["X-Openstack-Request-Id"] = rid
    log.info("api.request", method=request.method, path=request.path, status=response.status)
    return response


async def authenticate(request: web.Request, project: str | None) -> None:
    """Check the request's token (and that it is scoped to ``project``, when the path
    names one) and put its principal in ``request["principal"]``; the one token check
    of the compute API and the image, network and block-storage endpoints.

    Raises:
        Unauthorized: no token, an unknown or expired one, or another project's.
    """
    token = request.headers.get("X-Auth-Token")
    if not token:
        raise Unauthorized("Authentication required: send a token in X-Auth-Token.")
    principal = await validate_token(request.app[POOL], token)
    if principal is None:
        raise Unauthorized("The token is unknown or has expired.")
    if project is not None and project not in (principal.project_id, principal.project_name):
        raise Unauthorized(f"The token is not valid for project {project}.")
    request["principal"] = principal
    structlog.contextvars.bind_contextvars(project_id=principal.project_id,
                                           user_id=principal.user_id)


@web.middleware
async def auth_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every path but version discovery needs a valid token scoped to the path's project."""
    if _PUBLIC.match(request.path):
        return await handler(request)
    project = request.match_info.get("project_id")
    if project is None:
        # Unmatched routes: take the project from the path for the check.
        parts = request.path.split("/")
        project = parts[2] if len(parts) > 2 and parts[1] == "v2" else None
    await authenticate(request, project)
    return await handler(request)
