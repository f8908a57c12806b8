"""The hypervisor driver interface the compute agent drives.

Methods take our structs, never database rows. Each docstring states the
post-condition and whether a repeat is harmless; the agent relies on both when a
message is delivered twice.
"""

from __future__ import annotations

import abc
from uuid import UUID

import msgspec

from shared.contracts.common import FlavorSpec, ImageSpec, Port
from shared.contracts.compute import InjectedFile
from shared.states import PowerState


class ConfigDrive(msgspec.Struct, frozen=True, kw_only=True):
    """What a configuration drive carries (spec section 2.1.5.5)."""

    metadata: dict[str, str]
    files: tuple[InjectedFile, ...] = ()
    public_key: str | None = None
    user_data: bytes | None = None


class GuestSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a driver needs to create one guest."""

    server_id: UUID
    name: str
    flavor: FlavorSpec
    image: ImageSpec
    ports: tuple[Port, ...] = ()
    admin_pass: str | None = None
    metadata: dict[str, str] = {}
    files: tuple[InjectedFile, ...] = ()
    user_data: bytes | None = None
    config_drive: ConfigDrive | None = None


class GuestInfo(msgspec.Struct, frozen=True, kw_only=True):
    server_id: UUID
    power_state: PowerState
    ram_mb: int
    vcpus: int


class HostResources(msgspec.Struct, frozen=True, kw_only=True):
    """The capacity of the host the driver runs guests on."""

    ram_mb: int
    disk_gb: int
    vcpus: int


class DriverError(Exception):
    """The hypervisor refused or failed an operation."""


class HypervisorDriver(abc.ABC):
    @abc.abstractmethod
    async def host_resources(self) -> HostResources:
        """The host's total capacity (not what is free)."""

    @abc.abstractmethod
    async def spawn(self, spec: GuestSpec) -> None:
        """Create and start the guest. On return it is RUNNING; on failure
        (DriverError) nothing of it remains. Spawning a guest that already runs
        is a no-op."""

    @abc.abstractmethod
    async def destroy(self, server_id: UUID) -> None:
        """Stop and remove the guest; return quietly if it is already gone."""

    @abc.abstractmethod
    async def get_info(self, server_id: UUID) -> GuestInfo | None:
        """The guest's state as the hypervisor sees it; None if it has no such guest."""

    @abc.abstractmethod
    async def list_instances(self) -> list[UUID]:
        """Ids of every guest the hypervisor holds."""

    @abc.abstractmethod
    async def console_output(self, server_id: UUID) -> str:
        """The guest's console log as recorded so far (DriverError if no guest)."""

    # --- actions on a running guest (issue "Server actions through the agents") ---
    # TODO(issue 4): make these abstract once every driver implements them.

    async def reboot(self, server_id: UUID, *, hard: bool) -> None:
        """Restart the guest; on return it is RUNNING again. SOFT asks the guest OS,
        HARD power-cycles. DriverError if there is no such guest."""
        raise NotImplementedError

    async def power_off(self, server_id: UUID) -> None:
        """Stop the guest; on return it is SHUTDOWN. Idempotent."""
        raise NotImplementedError

    async def power_on(self, server_id: UUID) -> None:
        """Start a stopped guest; on return it is RUNNING. Idempotent."""
        raise NotImplementedError

    async def rescue(self, server_id: UUID, *, admin_pass: str, image: ImageSpec | None) -> None:
        """Boot the guest from a rescue image (its own disk attached); RUNNING on return."""
        raise NotImplementedError

    async def unrescue(self, server_id: UUID) -> None:
        """Boot the guest from its own disk again; RUNNING on return. Idempotent."""
        raise NotImplementedError

    async def rebuild(self, spec: GuestSpec) -> None:
        """Re-create the guest's disk from ``spec.image`` (same ports); RUNNING on return."""
        raise NotImplementedError

    async def snapshot(self, server_id: UUID) -> int:
        """Copy the guest's root disk; return the image's size in bytes."""
        raise NotImplementedError

    async def vnc_endpoint(self, server_id: UUID) -> tuple[str, int] | None:
        """Where the guest's VNC server listens, or None if the driver has none."""
        raise NotImplementedError
