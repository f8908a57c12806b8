"""Where a guest's VNC server listens (GetVncConsole, a call from the API for
os-getVNCConsole, section 4.4.16). The API turns the answer into a token for
the console proxy; None tells it the guest has no console to show now."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.contracts.compute import GetVncConsole, VncEndpoint

if TYPE_CHECKING:
    from services.compute_agent.agent import ComputeAgent


async def vnc_console(agent: ComputeAgent, msg: GetVncConsole) -> VncEndpoint | None:
    # Not serialized with the server's other operations: asking where the
    # console is changes nothing, and a snapshot in progress should not make
    # the user wait for it.
    endpoint = await agent.driver.vnc_endpoint(msg.server_id)
    if endpoint is None:
        return None
    host, port = endpoint
    return VncEndpoint(host=host, port=port)
