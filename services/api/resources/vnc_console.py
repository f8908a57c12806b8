"""Get VNC console (os-consoles, section 4.4.16):
``{"os-getVNCConsole": {"type": "novnc"}}`` / ``<os-getVNCConsole type="novnc"/>``.

The API asks the agent that owns the server where the guest's VNC server
listens (a GetVncConsole call), stores a fresh single-use token for it that
expires (``[api] console_token_ttl_s``, only its SHA-256 is kept, see
``shared.db.console_tokens``) and answers 200 with a URL of the console proxy
(``services.consoleproxy`` at ``[api] console_proxy_url``) holding the token:
``<proxy>/vnc_auto.html?token=...`` for ``novnc`` (a page whose websocket,
``/websockify?token=...``, the proxy relays to the guest), and
``<proxy>/console?token=...`` for ``xvpvnc``. Any other type (a list or an
object too) is 400.

A server that is not running (not ACTIVE or RESCUE, or its guest is not
powered on) has no console: 409. Asking for a console changes nothing on the
server and is not recorded as an instance action (as in Nova).

Spec contradiction: the JSON example's URL carries ``&title=<name>(<id>)``
after the token, the XML example's does not; we follow the JSON example (the
more detailed one) in both formats, for novnc, whose page shows the title.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

import asyncpg
import structlog
from aiohttp import web

from services.api.keys import POOL, RPC, SETTINGS
from services.api.representation import View
from services.api.resources.common import principal
from services.api.resources.server_tasks import host_alive, require_capable
from shared.contracts.compute import ComputeClient, GetVncConsole
from shared.db import console_tokens
from shared.errors import BadRequest, Conflict, ServiceUnavailable
from shared.states import VmState

log = structlog.get_logger(__name__)

# Console type -> the proxy's path for it.
CONSOLE_PATHS = {"novnc": "/vnc_auto.html", "xvpvnc": "/console"}

_RUNNING = (VmState.ACTIVE.value, VmState.RESCUED.value)


async def get_vnc_console(request: web.Request, row: asyncpg.Record, value: Any) -> View:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind is None:
        raise BadRequest("Missing type specification")
    if not isinstance(kind, str) or kind not in CONSOLE_PATHS:  # a list is unhashable
        raise BadRequest("Invalid type specification: the console type is novnc or xvpvnc.")
    sid = row["id"]
    if row["vm_state"] not in _RUNNING or row["host"] is None:
        raise Conflict(f"Instance {sid} is not ready: its console is available while it "
                       f"runs (vm_state {row['vm_state']}).")
    if row["task_state"] == "deleting":
        raise Conflict(f"Instance {sid} is being deleted.")
    await require_capable(request, row, "os-getVNCConsole")
    if not await host_alive(request, row["host"]):
        raise ServiceUnavailable(f"The compute host of instance {sid} is not responding; "
                                 "its console is not available now.")
    compute = ComputeClient(request.app[RPC], request_id=request["request_id"])
    endpoint = await compute.vnc_console(
        row["host"], GetVncConsole(server_id=sid), timeout=10)
    if endpoint is None:
        raise Conflict(f"Instance {sid} is not running: it has no console to show.")
    settings = request.app[SETTINGS].api
    token = str(uuid.uuid4())
    async with request.app[POOL].acquire() as conn:
        await console_tokens.issue(conn, token, server_id=sid,
                                   project_id=principal(request).project_id, console_type=kind,
                                   host=endpoint.host, port=endpoint.port,
                                   ttl_s=settings.console_token_ttl_s)
    query = {"token": token}
    if kind == "novnc":
        query["title"] = f"{row['name']}({sid})"
    base = settings.console_proxy_url.rstrip("/")
    url = f"{base}{CONSOLE_PATHS[kind]}?{urlencode(query, safe='()')}"
    log.info("api.console_issued", server_id=str(sid), type=kind)
    return View({"console": {"type": kind, "url": url}})
