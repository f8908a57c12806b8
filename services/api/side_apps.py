"""The image, network and block-storage endpoints: small apps beside compute.

Today's clients look images up in an image service (Glance), security groups,
floating IPs and networks in a network service (Neutron) and volumes in a
block-storage service (Cinder). Nimbus serves a subset of each on its own port
(9292, 9696, 8776 by default; ``services.api.glance``, ``services.api.neutron``,
``services.api.cinder``), as views onto the same rows and the same logic as the
compute API's own images, security groups, floating IPs and volumes.

They live in the API process, as identity does, rather than as services of
their own: every one of their writes is a compute API write under another
shape (the same quota checks, the same RPCs to the network and volume
services, the same outbox), so they share the process's database pool, RPC
client and relay, and scale with the API. A service of its own would repeat
all of that and add a hop to every request for nothing.

Each app is JSON only and renders its faults as the API it imitates does; the
one home of what becomes a fault stays ``fault_middleware_for``. Every request
but version discovery needs a valid token; its project is the token's (a path
that names a project, as Cinder's do, must name the token's).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import asyncpg
import msgspec
import structlog
from aiohttp import web

from services.api.keys import POOL, RELAY, RPC, SETTINGS
from services.api.middleware import Handler, authenticate, request_id_mw
from services.api.representation.faults import FaultRenderer, fault_middleware_for
from services.api.settings import Settings
from shared.metrics import http_metrics_mw
from shared.outbox import Relay
from shared.rpc import RpcClient

log = structlog.get_logger(__name__)

_ENCODER = msgspec.json.Encoder()
JSON = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    """``body`` as JSON (msgspec: dicts, lists, datetimes, UUIDs)."""
    return web.Response(body=_ENCODER.encode(body), status=status, content_type=JSON,
                        headers=headers)


def endpoint_url(request: web.Request) -> str:
    """The base URL the request came in on (``http://host:port``), for links."""
    return str(request.url.origin())


def token_auth_mw(public: re.Pattern[str]) -> Callable[..., Any]:
    """Every path ``public`` does not match needs a valid token in ``X-Auth-Token``;
    a ``{project_id}`` in the path must be the token's project."""

    @web.middleware
    async def token_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if public.match(request.path):
            return await handler(request)
        await authenticate(request, request.match_info.get("project_id"))
        return await handler(request)

    return token_auth


def create_side_app(settings: Settings, pool: asyncpg.Pool, rpc: RpcClient, relay: Relay, *,
                    name: str, render_fault: FaultRenderer, public: re.Pattern[str],
                    setup: Callable[[web.UrlDispatcher], None]) -> web.Application:
    """An app holding what the compute app holds (so that handlers share its
    logic), with ``render_fault``'s fault bodies and ``setup``'s routes; ``name``
    (``image``...) labels its requests in the metrics."""
    app = web.Application(middlewares=[http_metrics_mw(name), request_id_mw,
                                       fault_middleware_for(render_fault),
                                       token_auth_mw(public)],
                          client_max_size=settings.api.max_body_bytes)
    app[SETTINGS] = settings
    app[POOL] = pool
    app[RPC] = rpc
    app[RELAY] = relay
    setup(app.router)
    return app
