"""Console output (os-console-output, section 4.4.4).

``{"os-getConsoleOutput": {"length": 50}}`` / ``<os-getConsoleOutput><length>50
</length></os-getConsoleOutput>`` answers 200 with ``{"output": "..."}`` /
``<output>...</output>``: the guest's console log as its hypervisor driver
recorded it, cut as Nova cut it (the agent's ``console.tail``: the last
``length`` pieces of the log split on newlines, so a log that ends in a newline
gives its last ``length - 1`` lines), or all of it when ``length`` is absent,
null (``{"os-getConsoleOutput": {}}``, ``{"length": null}`` as novaclient sends,
``<os-getConsoleOutput/>``) or -1 (Nova's "unlimited"). ``length`` must be a
whole number, given as a JSON integer or a string of digits (XML values are
strings); anything else, or a number below -1, is 400 (Nova's later schema; its
v2 took any integer and sliced the log's head off for a negative one). 0 gives
an empty output, as in Nova. A length above ``MAX_LENGTH`` asks for the whole
log, as any length longer than the log does.

The log lives with the guest, so this is a call to the agent that owns the
server (``GetConsoleOutput``), with a short timeout (``CALL_TIMEOUT_S``): the
agent reads memory and answers at once, so waiting the broker's full RPC
timeout would only make a caller wait on a dead host. Errors:

* a server that is building, being deleted, or has no host: 409
  conflictingRequest, as Nova's InstanceNotReady;
* a host that has no guest for the server (it lost it in a restart): 409 as
  well, from the agent;
* a host that stopped heartbeating, or no answer within the timeout: 503
  serviceUnavailable, at once for the former. The server's state is fine, the
  service that holds its console is not; a retry may work.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from aiohttp import web

from services.api.keys import POOL, RPC, SETTINGS
from services.api.representation import View
from services.api.resources.server_tasks import require_capability
from shared.contracts.compute import ComputeClient, GetConsoleOutput
from shared.db import hosts
from shared.errors import BadRequest, Conflict, ServiceUnavailable
from shared.states import TaskState, VmState

log = structlog.get_logger(__name__)

CALL_TIMEOUT_S = 10.0
"""Longest wait for the agent's answer (bounded again by the broker's RPC timeout)."""

MAX_LENGTH = 2**31 - 1
"""Larger lengths read as this one: the agent's message carries a 64-bit integer
at most, and a bigger number would leave it unreadable (and the caller waiting)."""


def console_length(value: Any) -> int | None:
    """The ``length`` asked for (None: the whole log); 400 if it is no whole number >= -1."""
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise BadRequest("os-getConsoleOutput malformed or missing from request body")
    length = value.get("length")
    if length is None:
        return None
    # As Nova: through str() first, so 2.5 (or True) is refused rather than truncated.
    if isinstance(length, bool):
        raise BadRequest("Length in request body must be an integer value")
    try:
        number = int(str(length).strip())
    except ValueError:  # not a number, or over the 4,300 digits int() converts
        raise BadRequest("Length in request body must be an integer value") from None
    if number < -1:
        raise BadRequest("Length in request body must be -1 (all of the log) or greater")
    return None if number == -1 else min(number, MAX_LENGTH)


def _not_ready(row: asyncpg.Record) -> str | None:
    """Why the server can have no console now, if it cannot."""
    if row["vm_state"] == VmState.BUILDING:
        return f"Instance {row['id']} is not ready: it is still being built."
    if row["host"] is None:
        return f"Instance {row['id']} is not ready: it was never placed on a host."
    if row["task_state"] == TaskState.DELETING:
        return f"Instance {row['id']} is not ready: it is being deleted."
    return None


async def get_console_output(request: web.Request, row: asyncpg.Record, value: Any) -> View:
    length = console_length(value)
    reason = _not_ready(row)
    if reason is not None:
        raise Conflict(reason)
    sid, host = row["id"], row["host"]
    settings = request.app[SETTINGS]
    async with request.app[POOL].acquire() as conn:
        await require_capability(conn, row, "os-getConsoleOutput")
        alive = await hosts.is_alive(conn, host, settings.api.service_down_time_s)
    if not alive:
        raise ServiceUnavailable(f"The compute host of instance {sid} is not responding; "
                                 "its console output cannot be read now.")
    timeout = min(CALL_TIMEOUT_S, settings.amqp.rpc_timeout_s)
    compute = ComputeClient(request.app[RPC], request_id=request["request_id"])
    output = await compute.console_output(
        host, GetConsoleOutput(server_id=sid, length=length), timeout=timeout)
    log.info("api.console_output", server_id=str(sid), length=length, chars=len(output))
    return View({"output": output})
