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
    vnc_listen: str = "127.0.0.1"
    """Address the guests' VNC servers listen on (the console proxy connects there)."""
    vnc_port_min: Annotated[int, msgspec.Meta(ge=5900, le=65535)] = 5900
    vnc_port_max: Annotated[int, msgspec.Meta(ge=5900, le=65535)] = 65535
    """The ports this host's guests' VNC servers take. Several agents on one machine
    (``make up``'s three) each need a range of their own: their embedded QEMU
    drivers do not know of each other's ports."""
    force_config_drive: bool = True
    """Give every guest a config drive, asked for or not (Nova's
    ``force_config_drive``): Nimbus has no metadata service, so the drive is how a
    guest learns its hostname, keys, user data and network. Off: only when the
    user asks for one or injects files."""
    allow_kvm: bool = False
    """Use KVM (domain type ``kvm``) when ``/dev/kvm`` exists; otherwise, and by
    default, QEMU emulates the CPU (TCG, type ``qemu``)."""
    detach_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 20.0
    """How long one request to a running guest to release a volume's disk is waited
    for (Nova's ``device_detach_timeout``). The guest answers within a second or two
    when it runs; a guest still booting may miss the request, hence the attempts."""
    detach_attempts: Annotated[int, msgspec.Meta(ge=1)] = 3
    """How many times the release is asked for before a detach fails with the volume
    still attached (Nova's ``device_detach_attempts``). Attempts times the timeout
    is how long the agent may spend on one detach."""
    fake_disks: bool = False
    """Write empty placeholder files instead of running ``qemu-img`` (only for
    libvirt's ``test:///`` driver, which runs no QEMU and reads no disk)."""
