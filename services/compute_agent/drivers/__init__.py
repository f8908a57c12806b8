"""Hypervisor drivers: the interface (base) and its implementations."""

from services.compute_agent.drivers.base import (
    DriverError,
    GuestInfo,
    GuestSpec,
    HostResources,
    HypervisorDriver,
)

__all__ = ["DriverError", "GuestInfo", "GuestSpec", "HostResources", "HypervisorDriver"]
