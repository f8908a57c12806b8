"""``POST /v2/{project_id}/servers/{server_id}/action``: one body, one action.

The body's single key names the action (``{"reboot": {...}}``, ``<reboot .../>``).
Each action lives in the module of its feature and registers itself here with
``@server_action("name")``; its handler gets the request, the caller's server
row (another project's server is 404 before any handler runs) and the value
under the key (``None`` for an empty XML element such as ``<unrescue/>``), and
returns the response View.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

from services.api.keys import POOL
from services.api.queries import servers as q
from services.api.representation import View, parse_body, represented, route
from services.api.resources.common import parse_uuid, principal
from shared.errors import BadRequest, ServerNotFound

ActionHandler = Callable[[web.Request, asyncpg.Record, Any], Awaitable[View]]

_ACTIONS: dict[str, ActionHandler] = {}


def server_action(name: str) -> Callable[[ActionHandler], ActionHandler]:
    """Register ``handler`` for the action called ``name``."""
    def register(handler: ActionHandler) -> ActionHandler:
        if name in _ACTIONS:
            raise RuntimeError(f"server action {name!r} registered twice")
        _ACTIONS[name] = handler
        return handler
    return register


def registered() -> list[str]:
    return sorted(_ACTIONS)


@represented
async def server_action_endpoint(request: web.Request) -> View:
    body = await parse_body(request)
    if len(body) != 1:
        raise BadRequest("The action body must hold exactly one action.")
    (name, value), = body.items()
    handler = _ACTIONS.get(name)
    if handler is None:
        raise BadRequest(f"There is no such action: {name}")
    raw = request.match_info["server_id"]
    sid = parse_uuid(raw)
    row = None
    if sid is not None:
        async with request.app[POOL].acquire() as conn:
            row = await q.get(conn, principal(request).project_id, sid)
    if row is None:
        raise ServerNotFound(raw)
    return await handler(request, row, value)


def setup(router: web.UrlDispatcher) -> None:
    route(router, "POST", "/v2/{project_id}/servers/{server_id}/action", server_action_endpoint)
