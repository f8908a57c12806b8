"""Settings of the libvirt driver (section ``libvirt``: ``NIMBUS_LIBVIRT_<FIELD>``).

Kept apart from the driver so the agent's settings load where libvirt-python is
not installed."""

from __future__ import annotations

from typing import Annotated

import msgspec


class LibvirtSettings(msgspec.Struct, frozen=True, kw_only=True):
    uri: str = ""
    """libvirt connection URI; empty: QEMU embedded in the agent
    (``qemu:///embed?root=<state_dir>/<host>/libvirt``), one hypervisor per agent."""
    state_dir: str = ".run/libvirt"
    """Where the driver keeps its guests' disks, config drives and console logs
    (``<state_dir>/<host>/guests/<server id>/``); relative paths are from the
    working directory."""
    shutdown_timeout_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    """How long a soft reboot waits for the guest OS to shut down before cutting the power."""
    vnc_listen: str = "127.0.0.1"
    """Address the guests' VNC servers listen on (the console proxy connects there)."""
    allow_kvm: bool = False
    """Use KVM (domain type ``kvm``) when ``/dev/kvm`` exists; otherwise, and by
    default, QEMU emulates the CPU (TCG, type ``qemu``)."""
    fake_disks: bool = False
    """Write empty placeholder files instead of running ``qemu-img`` (only for
    libvirt's ``test:///`` driver, which runs no QEMU and reads no disk)."""
