"""Settings of the libvirt driver (section ``libvirt``: ``NIMBUS_LIBVIRT_<FIELD>``).

Kept apart from the driver so the agent's settings load where libvirt-python is
not installed."""

from __future__ import annotations

from typing import Annotated

import msgspec


class LibvirtSettings(msgspec.Struct, frozen=True, kw_only=True):
    uri: str = ""
    """libvirt connection URI; empty: QEMU embedded in the agent
    (``qemu:///embed?root=<state_dir>/<host>``)."""
    state_dir: str = ".run/libvirt"
    """Where the driver keeps its guests' disks, config drives and console logs
    (``<state_dir>/<host>/``)."""
    shutdown_timeout_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    """How long a stop waits for the guest OS to shut down before cutting the power."""
