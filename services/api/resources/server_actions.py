"""``POST /v2/{project_id}/servers/{server_id}/action``: one body, one action.

The body's single key names the action (``{"reboot": {...}}``, ``<reboot .../>``).
Each action lives in the module of its feature and registers itself here with
``@server_action("name")``; its handler gets the request, the caller's server
row (another project's server is 404 before any handler runs) and the value
under the key (``None`` for an empty XML element such as ``<unrescue/>``), and
returns the response View.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg
from aiohttp import web

from services.api.keys import POOL, SETTINGS
from services.api.queries import servers as q
from services.api.representation import View, parse_body, represented, route
from services.api.resources.common import parse_uuid, principal
from shared.db import actions, hosts
from shared.db import servers as server_db
from shared.errors import BadRequest, Conflict, ServerNotFound
from shared.states import TaskState, VmState

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


async def begin_task(request: web.Request, row: asyncpg.Record, *, action: str,
                     task: TaskState, allowed: Iterable[VmState]) -> str:
    """Start ``task`` for ``action`` on the server, record the instance action, and
    return the host to cast to.

    409 conflictingRequest, changing nothing, when the server's vm_state does not
    allow the action, another task is in flight (two actions racing: one wins),
    or the server has no host.
    """
    who = principal(request)
    allowed_states = [VmState(v).value for v in allowed]
    async with request.app[POOL].acquire() as conn:
        async with conn.transaction():
            started, host = await server_db.begin_task(conn, row["id"], who.project_id, task,
                                                       allowed_states)
            if not started or host is None:
                current = await server_db.get(conn, row["id"])
                raise Conflict(_conflict_message(action, row["id"], current))
            await actions.start_action(conn, server_id=row["id"], project_id=who.project_id,
                                       user_id=who.user_id, action=action,
                                       request_id=request["request_id"])
    return host


async def host_alive(request: web.Request, host: str) -> bool:
    """Whether ``host`` heartbeated recently enough to hand it work."""
    async with request.app[POOL].acquire() as conn:
        return await hosts.is_alive(conn, host, request.app[SETTINGS].api.service_down_time_s)


async def record_action(request: web.Request, row: asyncpg.Record, action: str) -> None:
    """Record an action the API completed itself (no agent work): started and finished."""
    who = principal(request)
    async with request.app[POOL].acquire() as conn:
        async with conn.transaction():
            await actions.start_action(conn, server_id=row["id"], project_id=who.project_id,
                                       user_id=who.user_id, action=action,
                                       request_id=request["request_id"])
            await actions.finish_action(conn, server_id=row["id"],
                                        request_id=request["request_id"])


def _conflict_message(action: str, server_id: object, current: asyncpg.Record | None) -> str:
    # Nova's wording: "Cannot 'reboot' instance X while it is in vm_state building".
    if current is None or current["deleted_at"] is not None:
        return f"Cannot '{action}' instance {server_id}: it is deleted."
    if current["task_state"] is not None:
        return (f"Cannot '{action}' instance {server_id} while it is in task_state "
                f"{current['task_state']}")
    return f"Cannot '{action}' instance {server_id} while it is in vm_state {current['vm_state']}"


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
