"""Reboot (section 4.4.1.17) and stop/start (os-server-start-stop, section 4.4.25).

``{"reboot": {"type": "SOFT"|"HARD"}}`` / ``<reboot type="HARD"/>``,
``{"os-stop": null}`` / ``<os-stop/>``, ``{"os-start": null}`` / ``<os-start/>``:
each moves the server into its task state with one guarded update
(``begin_task``) and casts the work to the agent that owns the server, answering
202 with no body. The agent moves it on: REBOOT or HARD_REBOOT then ACTIVE;
ACTIVE (``powering-off``) then SHUTOFF; SHUTOFF (``powering-on``) then ACTIVE.

Which states allow what follows Nova's ``check_instance_state``:

* SOFT reboot from ACTIVE only; HARD reboot also from SHUTOFF (it boots the
  guest: the server ends ACTIVE) and from ERROR (a way out of a failed action,
  when the guest is still there; Nova allowed it from Havana on);
* stop from ACTIVE and ERROR (Nova also allowed RESCUE; here a rescued server is
  unrescued first, so that start always boots the server's own disk);
* start from SHUTOFF only.

Anything else, or any task in flight (a delete included), is 409
conflictingRequest and changes nothing. Unlike Nova, a HARD reboot does not
override a SOFT one still under way: one action at a time, always (a stuck one
is failed by the scheduler's action timeout instead).

The type is case-insensitive, as in Nova ("soft" works); a missing or other type
is 400 with Nova's messages. The spec says HP's cloud always performed a HARD
reboot; Nimbus honours the type asked for, as the issue asks. os-stop and
os-start ignore their value (null, ``{}`` or an empty element), as Nova did.

A server whose host has stopped heartbeating gets 503 (the task is given back at
once, the instance action finished with an error) rather than a 202 for a
message nobody would read; so does a cast the broker refuses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from services.api.keys import POOL, RPC, SETTINGS
from services.api.representation import View
from services.api.resources.server_actions import begin_task, server_action
from shared.contracts.compute import (
    ComputeClient,
    ComputeMessage,
    RebootServer,
    StartServer,
    StopServer,
)
from shared.db import hosts
from shared.db import servers as server_db
from shared.errors import BadRequest, ServiceUnavailable
from shared.states import TaskState, VmState

log = structlog.get_logger(__name__)

SOFT_REBOOT_FROM = (VmState.ACTIVE,)
HARD_REBOOT_FROM = (VmState.ACTIVE, VmState.STOPPED, VmState.ERROR)
STOP_FROM = (VmState.ACTIVE, VmState.ERROR)
START_FROM = (VmState.STOPPED,)


async def cast_action(request: web.Request, row: asyncpg.Record, msg: ComputeMessage, *,
                      action: str, task: TaskState, allowed: Iterable[VmState]) -> None:
    """Start ``task`` for ``action`` (409 if the server's state does not allow it) and
    hand ``msg`` to the server's host; 503 if the host is down or the broker refuses
    the message, the task given back (the server as it was, the instance action
    finished with the error)."""
    sid = row["id"]
    pool = request.app[POOL]
    host = await begin_task(request, row, action=action, task=task, allowed=allowed)
    async with pool.acquire() as conn:
        alive = await hosts.is_alive(conn, host, request.app[SETTINGS].api.service_down_time_s)
    if not alive:
        await _give_back(pool, sid, task, "Error: the compute host is not responding")
        raise ServiceUnavailable(f"The compute host of instance {sid} is not responding; "
                                 f"cannot '{action}' it now, try again later.")
    try:
        await ComputeClient(request.app[RPC]).cast(host, msg)
    except Exception as exc:
        log.error("api.action_cast_failed", server_id=str(sid), action=action, host=host,
                  error=str(exc))
        await _give_back(pool, sid, task, "Error: the request could not reach the compute host")
        raise ServiceUnavailable(f"Cannot '{action}' instance {sid} now; try again.") from None
    log.info("api.server_action", server_id=str(sid), action=action, host=host)


async def _give_back(pool: asyncpg.Pool, sid: Any, task: TaskState, message: str) -> None:
    """Clear the task just begun (the server is as it was) and finish its action."""
    async with pool.acquire() as conn:
        await server_db.end_task(conn, sid, task, message=message)


def reboot_type(value: Any) -> str:
    """``SOFT`` or ``HARD`` from the reboot body's value; 400 otherwise (Nova's messages)."""
    if not isinstance(value, dict) or value.get("type") is None:
        raise BadRequest("Missing argument 'type' for reboot")
    kind = value["type"]
    if not isinstance(kind, str) or kind.strip().upper() not in ("SOFT", "HARD"):
        raise BadRequest("Argument 'type' for reboot is not HARD or SOFT")
    return kind.strip().upper()


@server_action("reboot")
async def reboot(request: web.Request, row: asyncpg.Record, value: Any) -> View:
    hard = reboot_type(value) == "HARD"
    await cast_action(request, row, RebootServer(server_id=row["id"], hard=hard),
                      action="reboot",
                      task=TaskState.REBOOTING_HARD if hard else TaskState.REBOOTING,
                      allowed=HARD_REBOOT_FROM if hard else SOFT_REBOOT_FROM)
    return View(None, status=202)


@server_action("os-stop")
async def stop(request: web.Request, row: asyncpg.Record, value: Any) -> View:
    await cast_action(request, row, StopServer(server_id=row["id"]), action="stop",
                      task=TaskState.POWERING_OFF, allowed=STOP_FROM)
    return View(None, status=202)


@server_action("os-start")
async def start(request: web.Request, row: asyncpg.Record, value: Any) -> View:
    await cast_action(request, row, StartServer(server_id=row["id"]), action="start",
                      task=TaskState.POWERING_ON, allowed=START_FROM)
    return View(None, status=202)


def setup(router: web.UrlDispatcher) -> None:
    """Nothing to route: the actions above register with ``server_actions``."""
