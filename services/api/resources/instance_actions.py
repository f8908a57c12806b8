"""Instance actions: list and get (section 4.4.20).

Every operation the API accepts on a server starts an action keyed by the
request id it answered with (``X-Compute-Request-Id``); the scheduler and the
compute agent record events on it (``shared.db.actions``). An action's id in
the URL *is* that request id, as the spec's curl example shows.

Choices:

* Actions of a deleted server stay readable by its project (Nova allows it
  from microversion 2.21 on): the log matters most once the server is gone,
  and it is the only way to see that a delete finished. Another project's
  server, deleted or not, is 404 as always.
* Get answers 200. The spec's text says 202 for this GET, which no Nova ever
  returned and which contradicts its own list call (200); we follow Nova.
* Get shows the action's ``events`` to everyone (Nova 2.51 behaviour), with
  each event's ``traceback`` to admins only; the list shows no events.
"""

from __future__ import annotations

from uuid import UUID

from aiohttp import web

from services.api.keys import POOL
from services.api.queries import instance_actions as q
from services.api.representation import View, represented, route
from services.api.resources.common import parse_uuid, principal
from services.api.views import instance_actions as views
from shared.db import actions
from shared.errors import NotFound, ServerNotFound


async def _server_id(request: web.Request, conn: object) -> UUID:
    raw = request.match_info["server_id"]
    sid = parse_uuid(raw)
    if sid is None or not await q.server_owned(conn, principal(request).project_id, sid):
        raise ServerNotFound(raw)
    return sid


@represented
async def list_actions(request: web.Request) -> View:
    async with request.app[POOL].acquire() as conn:
        sid = await _server_id(request, conn)
        rows = await actions.list_for_server(conn, sid)
    return View({"instanceActions": [views.action(r) for r in rows]})


@represented
async def show_action(request: web.Request) -> View:
    request_id = request.match_info["request_id"]
    async with request.app[POOL].acquire() as conn:
        sid = await _server_id(request, conn)
        row = await actions.get(conn, sid, request_id)
        if row is None:
            raise NotFound(f"Action {request_id} not found.")
        events = await actions.events(conn, row["id"])
    body = views.action_with_events(row, events, is_admin=principal(request).is_admin)
    return View({"instanceAction": body})


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/servers/{server_id}/os-instance-actions", list_actions)
    route(router, "GET", "/v2/{project_id}/servers/{server_id}/os-instance-actions/{request_id}",
          show_action)
