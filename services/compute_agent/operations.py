"""Which module handles which compute message: one operation per module.

A new operation adds its module and one line here; ``ComputeAgent.handle``
looks the message's type up in ``HANDLERS``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.compute_agent import build, delete
from services.compute_agent import console, power, rescue
from services.compute_agent import rebuild, snapshot, vnc
from shared.contracts import compute as m

HANDLERS: dict[type, Callable[[Any, Any], Awaitable[object]]] = {
    m.BuildServer: build.build_server,
    m.DeleteServer: delete.delete_server,
    m.RebootServer: power.reboot_server,
    m.StopServer: power.stop_server,
    m.StartServer: power.start_server,
    m.RescueServer: rescue.rescue_server,
    m.UnrescueServer: rescue.unrescue_server,
    m.GetConsoleOutput: console.console_output,
    m.RebuildServer: rebuild.rebuild_server,
    m.SnapshotServer: snapshot.snapshot_server,
    m.GetVncConsole: vnc.vnc_console,
}
