"""The image endpoint's app: Glance's version discovery, faults and routes."""

from __future__ import annotations

import re
from http import HTTPStatus

import asyncpg
from aiohttp import web

from services.api.glance import routes
from services.api.representation.faults import Fault
from services.api.settings import Settings
from services.api.side_apps import create_side_app, json_response
from shared.outbox import Relay
from shared.rpc import RpcClient

# Version discovery and the health of the process answer without a token.
PUBLIC = re.compile(r"^/(?:versions|v2/?)?$")


def render_fault(request: web.Request, fault: Fault) -> web.Response:
    """Glance's errors, as webob renders them for a JSON client:
    ``{"code": "404 Not Found", "title": "Not Found", "message": "..."}``."""
    title = HTTPStatus(fault.status).phrase if fault.status in HTTPStatus._value2member_map_ \
        else "Error"
    return json_response({"code": f"{fault.status} {title}", "title": title,
                          "message": fault.message}, fault.status, dict(fault.headers))


def create_app(settings: Settings, pool: asyncpg.Pool, rpc: RpcClient,
               relay: Relay) -> web.Application:
    return create_side_app(settings, pool, rpc, relay, render_fault=render_fault,
                           public=PUBLIC, setup=routes.setup)
