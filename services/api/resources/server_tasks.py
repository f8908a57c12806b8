"""Handing work on a server to its compute agent: the one ``cast_action``.

Every action the API accepts for an agent to carry out (reboot, stop, start,
rescue, unrescue, rebuild, createImage) goes through :func:`cast_action`, so
the rules hold the same for all of them:

* the request has been validated completely before this is called: a refused
  request changes nothing;
* a server whose host counts as down (``shared.db.hosts``) gets 503 before
  anything changes: a 202 would promise work nobody will do;
* in one transaction: the task begins with a guarded update from the
  transitions table (``shared.states``; 409 conflictingRequest, nothing
  changed, if the server's state does not allow it or another task is in
  flight), the instance action is recorded, whatever else the action writes
  (``also``) is written, and the message goes into the outbox
  (``shared.outbox``);
* after commit the relay publishes it. The answer does not wait for the
  broker: work accepted while the broker is down is delivered when it is back.

Actions the API completes itself (floating IPs, security groups) record their
instance action with :func:`record_action`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import msgspec
import structlog
from aiohttp import web

from services.api.keys import POOL, RELAY, SETTINGS
from services.api.resources.common import principal
from shared import outbox
from shared.contracts.compute import host_queue
from shared.db import actions, hosts
from shared.db import servers as server_db
from shared.errors import Conflict, NotImplementedFault, ServiceUnavailable
from shared.states import Transition

log = structlog.get_logger(__name__)

Also = Callable[[asyncpg.Connection], Awaitable[None]]

# What each action needs of the server's hypervisor beyond power and reboot: a
# field of ``drivers.base.Capabilities``, which every agent reports with its host.
NEEDS: dict[str, tuple[str, str]] = {
    # action: (capability, what the refusal says the hypervisor cannot do)
    "rescue": ("rescue", "rescue a server"),
    "unrescue": ("rescue", "rescue a server"),
    "createImage": ("snapshot", "snapshot a server"),
    "os-getVNCConsole": ("vnc_console", "give a VNC console"),
    "os-getConsoleOutput": ("console_output", "record console output"),
    "attach_volume": ("volumes", "attach a volume"),
    "detach_volume": ("volumes", "detach a volume"),
}


async def require_capability(conn: asyncpg.Connection, row: asyncpg.Record, action: str) -> None:
    """501 notImplemented when the server's host runs a hypervisor that cannot do
    ``action`` (Nova answers a driver's NotImplementedError so); nothing changes."""
    need = NEEDS.get(action)
    if need is None or row["host"] is None:
        return
    hypervisor, capabilities = await hosts.hypervisor_of(conn, row["host"])
    if capabilities is not None and not capabilities.get(need[0], False):
        raise NotImplementedFault(f"Instance {row['id']} runs on a {hypervisor} hypervisor, "
                                  f"which cannot {need[1]}.")


async def cast_action(request: web.Request, row: asyncpg.Record, transition: Transition,
                      msg: msgspec.Struct, *, also: Also | None = None,
                      action: str | None = None) -> None:
    """Begin ``transition`` on the server and hand ``msg`` to its host (see the module
    docstring). ``action`` names the instance action when it is not the
    transition's own (the spec's action name, e.g. ``"createImage"``)."""
    who = principal(request)
    sid = row["id"]
    name = action or transition.action
    pool, relay = request.app[POOL], request.app[RELAY]
    async with pool.acquire() as conn:
        if row["host"] is not None and await hosts.is_down(
                conn, row["host"], request.app[SETTINGS].api.service_down_time_s):
            raise ServiceUnavailable(f"The compute host of instance {sid} is not responding; "
                                     f"cannot '{name}' it now, try again later.")
        await require_capability(conn, row, name)
        async with conn.transaction():
            started, host = await server_db.begin_task(conn, sid, who.project_id, transition,
                                                       request_id=request["request_id"])
            if not started or host is None:
                raise Conflict(conflict_message(name, sid, await server_db.get(conn, sid)))
            await actions.start_action(conn, server_id=sid, project_id=who.project_id,
                                       user_id=who.user_id, action=name,
                                       request_id=request["request_id"])
            if also is not None:
                await also(conn)
            item = await outbox.put(conn, host_queue(host), msg,
                                    request_id=request["request_id"], lease_s=relay.lease_s)
    relay.send(item)
    log.info("api.server_action", server_id=str(sid), action=name, host=host)


async def require_capable(request: web.Request, row: asyncpg.Record, action: str) -> None:
    """:func:`require_capability` for handlers that call the agent (no task)."""
    async with request.app[POOL].acquire() as conn:
        await require_capability(conn, row, action)


async def host_alive(request: web.Request, host: str | None) -> bool:
    """Whether ``host`` may be handed work (it does not count as down)."""
    if host is None:
        return False
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


def conflict_message(action: str, server_id: object, current: asyncpg.Record | None) -> str:
    # Nova's wording: "Cannot 'reboot' instance X while it is in vm_state building".
    if current is None or current["deleted_at"] is not None:
        return f"Cannot '{action}' instance {server_id}: it is deleted."
    if current["task_state"] is not None:
        return (f"Cannot '{action}' instance {server_id} while it is in task_state "
                f"{current['task_state']}")
    return f"Cannot '{action}' instance {server_id} while it is in vm_state {current['vm_state']}"
