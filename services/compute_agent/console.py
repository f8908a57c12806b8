"""The guest's console log (os-getConsoleOutput, section 4.4.4): a call, answered at once.

It reads what the driver recorded and takes no server lock, so the log can be
read while a reboot or rescue is under way (that is when it is most useful).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from services.compute_agent.drivers import (
    GuestNotFound,
    HypervisorUnavailable,
    NotSupported,
)
from shared.contracts.compute import GetConsoleOutput
from shared.errors import Conflict, NotImplementedFault, ServiceUnavailable

if TYPE_CHECKING:
    from services.compute_agent.agent import ComputeAgent

log = structlog.get_logger(__name__)


def tail(text: str, length: int | None) -> str:
    """Nova's cut (``_tail_log`` in its compute manager): ``text`` split on newlines,
    its last ``length`` pieces joined again; all of it for None, nothing for 0.

    A log that ends in a newline ends in an empty piece, so ``length`` N gives its
    last N-1 lines and the final newline. Only a line feed splits, as in Nova: a
    CRLF line keeps its carriage return, and a lone carriage return ends no line.
    The API refuses negative lengths, so none comes here.
    """
    if length is None:
        return text
    if length <= 0:
        return ""
    return "\n".join(text.split("\n")[-length:])


async def console_output(agent: ComputeAgent, msg: GetConsoleOutput) -> str:
    try:
        text = await agent.driver.console_output(msg.server_id)
    except GuestNotFound as exc:
        # Nova's InstanceNotReady: the server exists but this host has no guest
        # for it (it never got one, or lost it when the host restarted).
        log.info("compute.console_unavailable", server_id=str(msg.server_id), error=str(exc))
        raise Conflict(f"Instance {msg.server_id} is not ready: its host has no guest "
                       "for it, so there is no console output.") from None
    except NotSupported as exc:
        raise NotImplementedFault(str(exc)) from None
    except HypervisorUnavailable:
        raise ServiceUnavailable(f"The hypervisor of instance {msg.server_id}'s host is not "
                                 "answering; its console output cannot be read now.") from None
    return tail(text, msg.length)
