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
    """Glance's errors in JSON: ``{"error": {"code": 404, "title": "Not Found",
    "message": "..."}}``.

    Glance sends webob's error pages: HTML to most clients, a flat
    ``{"code", "title", "message"}`` to one that asks for JSON. This endpoint is
    JSON only, and python-glanceclient reads a JSON error as an object of objects
    (the ``message`` of each value, as it reads Nova's faults): a flat body makes
    it fail on its own error handling. One object under ``error`` is read right
    by glanceclient and openstacksdk alike.
    """
    title = HTTPStatus(fault.status).phrase if fault.status in HTTPStatus._value2member_map_ \
        else "Error"
    return json_response({"error": {"code": fault.status, "title": title,
                                    "message": fault.message}},
                         fault.status, dict(fault.headers))


def create_app(settings: Settings, pool: asyncpg.Pool, rpc: RpcClient,
               relay: Relay) -> web.Application:
    return create_side_app(settings, pool, rpc, relay, name="image", render_fault=render_fault,
                           public=PUBLIC, setup=routes.setup)
