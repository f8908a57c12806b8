"""Before a spent token is relayed: is the console it names still that server's?

A token outlives what it was issued for: within its lifetime the server may be
deleted, rebuilt or stopped, and its VNC port handed to another guest (the fake
driver's are ephemeral ports of 127.0.0.1). So, as Nova's proxy asked the
compute host to ``validate_console_port``, the proxy asks the agent that owns
the server now where its console is (the same GetVncConsole call the API
makes) and connects only if that is where the token points.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from shared.contracts.compute import ComputeClient, GetVncConsole
from shared.db import servers
from shared.db.console_tokens import ConsoleTarget
from shared.errors import ComputeError

log = structlog.get_logger(__name__)

Validator = Callable[[ConsoleTarget], Awaitable[None]]
"""Returns quietly for a console that may be opened; raises ConsoleGone or
ConsoleUnreachable otherwise."""


class ConsoleGone(Exception):
    """The token named a console that is no longer there (401: ask for a new URL)."""

    status = 401


class ConsoleUnreachable(Exception):
    """The server's compute agent could not say (503: try again)."""

    status = 503


def agent_validator(pool: asyncpg.Pool, compute: ComputeClient, *,
                    timeout_s: float) -> Validator:
    async def validate(target: ConsoleTarget) -> None:
        async with pool.acquire() as conn:
            row = await servers.get(conn, target.server_id)
        if row is None or row["deleted_at"] is not None or row["host"] is None:
            raise ConsoleGone("The server of this console no longer exists.")
        try:
            endpoint = await compute.vnc_console(
                row["host"], GetVncConsole(server_id=target.server_id), timeout=timeout_s)
        except ComputeError as exc:  # RpcTimeout, the agent's own errors
            # What failed stays in the log: its text names hosts and queues, which a
            # tenant's browser has no business seeing.
            log.warning("consoleproxy.agent_unreachable", server_id=str(target.server_id),
                        error=exc.message)
            raise ConsoleUnreachable(f"The compute host of server {target.server_id} did "
                                     "not answer; try again in a moment.") from None
        if endpoint is None or (endpoint.host, endpoint.port) != (target.host, target.port):
            raise ConsoleGone("This console is no longer available (the server stopped or "
                              "moved); ask for a new console URL.")
    return validate
