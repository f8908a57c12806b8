"""Which module handles which compute message: one operation per module.

A new operation adds its module and one line here; ``ComputeAgent.handle``
looks the message's type up in ``HANDLERS``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.compute_agent import build, delete
from shared.contracts import compute as m

HANDLERS: dict[type, Callable[[Any, Any], Awaitable[object]]] = {
    m.BuildServer: build.build_server,
    m.DeleteServer: delete.delete_server,
}
