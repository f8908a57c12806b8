"""Reboot (section 4.4.1.17) and stop/start (os-server-start-stop, section 4.4.25).

``{"reboot": {"type": "SOFT"|"HARD"}}`` / ``<reboot type="HARD"/>``,
``{"os-stop": null}`` / ``<os-stop/>``, ``{"os-start": null}`` / ``<os-start/>``:
each begins its task and hands the work to the agent that owns the server
(``server_tasks.cast_action``), answering 202 with no body. The agent moves it
on: REBOOT or HARD_REBOOT then ACTIVE; ACTIVE (``powering-off``) then SHUTOFF;
SHUTOFF (``powering-on``) then ACTIVE.

Which states allow what is the transitions table's (``shared.states``: REBOOT,
HARD_REBOOT, STOP, START, after Nova's ``check_instance_state``); anything else,
or any task in flight (a delete included), is 409 conflictingRequest and changes
nothing. Unlike Nova, a HARD reboot does not override a SOFT one still under
way: one action at a time, always (a stuck one is failed by the scheduler's
action timeout instead).

The type is case-insensitive, as in Nova ("soft" works); a missing or other type
is 400 with Nova's messages. The spec says HP's cloud always performed a HARD
reboot; Nimbus honours the type asked for, as the issue asks. os-stop and
os-start ignore their value (null, ``{}`` or an empty element), as Nova did.

A server whose host has stopped heartbeating gets 503 and nothing changes.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from services.api.representation import View
from services.api.resources.server_tasks import cast_action
from shared.contracts.compute import RebootServer, StartServer, StopServer
from shared.errors import BadRequest
from shared.states import HARD_REBOOT, REBOOT, START, STOP


def reboot_type(value: Any) -> str:
    """``SOFT`` or ``HARD`` from the reboot body's value; 400 otherwise (Nova's messages)."""
    if not isinstance(value, dict) or value.get("type") is None:
        raise BadRequest("Missing argument 'type' for reboot")
    kind = value["type"]
    if not isinstance(kind, str) or kind.strip().upper() not in ("SOFT", "HARD"):
        raise BadRequest("Argument 'type' for reboot is not HARD or SOFT")
    return kind.strip().upper()


async def reboot(request: web.Request, row: asyncpg.Record, value: Any) -> View:
    hard = reboot_type(value) == "HARD"
    await cast_action(request, row, HARD_REBOOT if hard else REBOOT,
                      RebootServer(server_id=row["id"], hard=hard))
    return View(None, status=202)


async def stop(request: web.Request, row: asyncpg.Record, value: Any) -> View:
    await cast_action(request, row, STOP, StopServer(server_id=row["id"]))
    return View(None, status=202)


async def start(request: web.Request, row: asyncpg.Record, value: Any) -> View:
    await cast_action(request, row, START, StartServer(server_id=row["id"]))
    return View(None, status=202)
