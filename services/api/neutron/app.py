"""The network endpoint's app: Neutron's version discovery, faults and routes."""

from __future__ import annotations

import re

import asyncpg
from aiohttp import web

from services.api.neutron import routes
from services.api.representation.faults import Fault
from services.api.settings import Settings
from services.api.side_apps import create_side_app, json_response
from shared.errors import QuotaExceeded
from shared.outbox import Relay
from shared.rpc import RpcClient

PUBLIC = re.compile(r"^/$")

# Neutron's fault types by status, where the error raised names none of its own.
_TYPES = {400: "HTTPBadRequest", 401: "HTTPUnauthorized", 403: "HTTPForbidden",
          404: "HTTPNotFound", 405: "HTTPMethodNotAllowed", 409: "HTTPConflict",
          413: "HTTPRequestEntityTooLarge", 503: "HTTPServiceUnavailable"}


def render_fault(request: web.Request, fault: Fault) -> web.Response:
    """Neutron's errors: ``{"NeutronError": {"type": ..., "message": ..., "detail": ""}}``.

    An error may name its Neutron type in a ``neutron_type`` attribute
    (``SecurityGroupNotFound``...); otherwise the type follows the status.

    A quota fault is Neutron's 409 ``OverQuota`` (the compute API's is 413
    overLimit): the same ``QuotaExceeded`` from the same checks, in Neutron's
    words. Neutron sent no ``Retry-After`` with it, so neither does this.
    """
    status, headers = fault.status, dict(fault.headers)
    if isinstance(fault.error, QuotaExceeded):
        status, kind = 409, "OverQuota"
        headers.pop("Retry-After", None)
    else:
        kind = getattr(fault.error, "neutron_type", None) or _TYPES.get(
            status, "HTTPInternalServerError")
    return json_response({"NeutronError": {"type": kind, "message": fault.message,
                                           "detail": fault.details or ""}},
                         status, headers)


def create_app(settings: Settings, pool: asyncpg.Pool, rpc: RpcClient,
               relay: Relay) -> web.Application:
    return create_side_app(settings, pool, rpc, relay, name="network", render_fault=render_fault,
                           public=PUBLIC, setup=routes.setup)
