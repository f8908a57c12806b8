"""Hypervisor drivers: the interface (``base``), its implementations, and the
registry the agent picks one from by name (``NIMBUS_COMPUTE_DRIVER``).

Each entry names the driver's class and the settings section it reads
(``NIMBUS_<SECTION>_<FIELD>``); the class is imported only when chosen, so the
fake driver runs where libvirt-python is not installed. A new driver is one
entry here, one settings section on the agent's ``Settings``, and a class with
``from_settings(section, context)``.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

from services.compute_agent.drivers.base import (
    Capabilities,
    DriverContext,
    DriverError,
    GuestConfig,
    GuestInfo,
    GuestNotFound,
    GuestSpec,
    HostResources,
    HypervisorDriver,
    HypervisorUnavailable,
    NotSupported,
)


class DriverEntry(NamedTuple):
    cls: str
    """``module:Class`` of the driver."""
    section: str
    """The agent settings' field holding its settings."""


DRIVERS: dict[str, DriverEntry] = {
    "fake": DriverEntry("services.compute_agent.drivers.fake:FakeDriver", "fake"),
    "libvirt": DriverEntry("services.compute_agent.drivers.libvirt.driver:LibvirtDriver",
                           "libvirt"),
}


def make_driver(name: str, settings: Any, context: DriverContext) -> HypervisorDriver:
    """The driver called ``name``, made from its section of the agent's ``settings``."""
    try:
        entry = DRIVERS[name]
    except KeyError:
        raise SystemExit(f"unknown hypervisor driver {name!r}; "
                         f"choose one of {', '.join(sorted(DRIVERS))}") from None
    module, _, cls_name = entry.cls.partition(":")
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except ImportError as exc:
        raise SystemExit(f"the {name} driver cannot be loaded: {exc}") from exc
    driver: HypervisorDriver = cls.from_settings(getattr(settings, entry.section), context)
    return driver


__all__ = ["DRIVERS", "Capabilities", "DriverContext", "DriverError", "GuestConfig",
           "GuestInfo", "GuestNotFound", "GuestSpec", "HostResources", "HypervisorDriver",
           "HypervisorUnavailable", "NotSupported", "make_driver"]
