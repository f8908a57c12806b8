"""Which message the agent answers how: one operation (or call) per module.

Messages that change a server map to an :class:`~services.compute_agent.runner.Operation`,
run by the runner; calls that only read (console output, VNC endpoint) map to a
plain function. A new operation adds its module and one line here; nothing
registers itself on import.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.compute_agent import console, vnc
from services.compute_agent.build import Build
from services.compute_agent.delete import Delete
from services.compute_agent.power import Start, Stop, reboot_operation
from services.compute_agent.rebuild import Rebuild
from services.compute_agent.rescue import Rescue, Unrescue
from services.compute_agent.runner import Operation
from services.compute_agent.snapshot import Snapshot
from shared.contracts import compute as m

_BUILD, _DELETE, _STOP, _START = Build(), Delete(), Stop(), Start()
_RESCUE, _UNRESCUE, _REBUILD, _SNAPSHOT = Rescue(), Unrescue(), Rebuild(), Snapshot()

OPERATIONS: dict[type, Callable[[Any], Operation]] = {
    m.BuildServer: lambda _: _BUILD,
    m.DeleteServer: lambda _: _DELETE,
    m.RebootServer: reboot_operation,
    m.StopServer: lambda _: _STOP,
    m.StartServer: lambda _: _START,
    m.RescueServer: lambda _: _RESCUE,
    m.UnrescueServer: lambda _: _UNRESCUE,
    m.RebuildServer: lambda _: _REBUILD,
    m.SnapshotServer: lambda _: _SNAPSHOT,
}
"""Messages that change a server, and the operation each runs."""

CALLS: dict[type, Callable[[Any, Any], Awaitable[object]]] = {
    m.GetConsoleOutput: console.console_output,
    m.GetVncConsole: vnc.vnc_console,
}
"""Calls that read what the driver knows, answered at once, outside the runner."""
