"""``POST /v2/{project_id}/servers/{server_id}/action``: one body, one action.

The body's single key names the action (``{"reboot": {...}}``, ``<reboot .../>``);
:data:`ACTIONS` below is the whole table, each entry a handler in the module of
its feature. A handler gets the request, the caller's server row (another
project's server is 404 before any handler runs) and the value under the key
(``None`` for an empty XML element such as ``<unrescue/>``), and returns the
response View. Handlers validate everything before they change anything, then
hand agent work over with ``server_tasks.cast_action``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

from services.api.representation import View, parse_body, represented, route
from services.api.resources import console_output, server_floating_ips, server_image
from services.api.resources import server_power, server_rebuild, server_rescue
from services.api.resources import server_security_groups, vnc_console
from services.api.resources.common import load_server
from shared.errors import BadRequest

ActionHandler = Callable[[web.Request, asyncpg.Record, Any], Awaitable[View]]

ACTIONS: dict[str, ActionHandler] = {
    "reboot": server_power.reboot,
    "os-stop": server_power.stop,
    "os-start": server_power.start,
    "rescue": server_rescue.rescue,
    "unrescue": server_rescue.unrescue,
    "rebuild": server_rebuild.rebuild,
    "createImage": server_image.create_image,
    "os-getConsoleOutput": console_output.get_console_output,
    "os-getVNCConsole": vnc_console.get_vnc_console,
    "addFloatingIp": server_floating_ips.add_floating_ip,
    "removeFloatingIp": server_floating_ips.remove_floating_ip,
    "addSecurityGroup": server_security_groups.add_security_group,
    "removeSecurityGroup": server_security_groups.remove_security_group,
}


def registered() -> list[str]:
    return sorted(ACTIONS)


@represented
async def server_action_endpoint(request: web.Request) -> View:
    body = await parse_body(request)
    if len(body) != 1:
        raise BadRequest("The action body must hold exactly one action.")
    (name, value), = body.items()
    handler = ACTIONS.get(name)
    if handler is None:
        raise BadRequest(f"There is no such action: {name}")
    return await handler(request, await load_server(request), value)


def setup(router: web.UrlDispatcher) -> None:
    route(router, "POST", "/v2/{project_id}/servers/{server_id}/action", server_action_endpoint)
