"""The block-storage endpoint's app: Cinder's faults, microversion header and routes."""

from __future__ import annotations

import re

import asyncpg
from aiohttp import web

from services.api.cinder import routes, versions
from services.api.representation.faults import Fault, fault_body_json
from services.api.settings import Settings
from services.api.side_apps import create_side_app
from shared.outbox import Relay
from shared.rpc import RpcClient

PUBLIC = re.compile(r"^/(?:v3/?)?$")


def render_fault(request: web.Request, fault: Fault) -> web.Response:
    """Cinder's errors are Nova's (``{"itemNotFound": {"code": 404, "message": ...}}``),
    in JSON whatever the client asks for."""
    return web.Response(status=fault.status, body=fault_body_json(fault),
                        content_type="application/json", headers=dict(fault.headers))


def create_app(settings: Settings, pool: asyncpg.Pool, rpc: RpcClient,
               relay: Relay) -> web.Application:
    app = create_side_app(settings, pool, rpc, relay, name="block_storage",
                          render_fault=render_fault,
                          public=PUBLIC, setup=routes.setup)
    # Innermost: a request is authenticated before its version is read, as in
    # Cinder; the version header goes on every /v3 answer, faults included.
    app.middlewares.append(versions.microversion_mw)
    app.on_response_prepare.append(versions.version_headers)
    return app
