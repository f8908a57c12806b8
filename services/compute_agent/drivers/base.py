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
    rescued: bool = False
    """Running from a rescue image (see ``rescue``)."""


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

    @abc.abstractmethod
    async def reboot(self, server_id: UUID, *, hard: bool) -> None:
        """Restart the guest: it goes SHUTDOWN, then boots again and is RUNNING on
        return. SOFT asks the guest OS (a guest that is not running gets a HARD
        one instead); HARD power-cycles, and also starts a stopped guest. Safe to
        repeat (one more reboot). DriverError if there is no such guest."""

    @abc.abstractmethod
    async def power_off(self, server_id: UUID) -> None:
        """Shut the guest down; on return it is SHUTDOWN. Idempotent (a guest already
        off is left alone). DriverError if there is no such guest."""

    @abc.abstractmethod
    async def power_on(self, server_id: UUID) -> None:
        """Boot a stopped guest; on return it is RUNNING. Idempotent (a running guest
        is left alone). DriverError if there is no such guest."""

    @abc.abstractmethod
    async def rescue(self, server_id: UUID, *, admin_pass: str, image: ImageSpec | None) -> None:
        """Boot the guest from ``image`` (None: the driver's default rescue image) with
        ``admin_pass`` as its root password and the guest's own disk attached; on
        return it is RUNNING and ``get_info`` says ``rescued``. Idempotent (a guest
        already rescued is left alone). DriverError if there is no such guest."""

    @abc.abstractmethod
    async def unrescue(self, server_id: UUID) -> None:
        """Boot the guest from its own disk again; on return it is RUNNING and not
        ``rescued``. Idempotent. DriverError if there is no such guest."""

    @abc.abstractmethod
    async def rebuild(self, spec: GuestSpec) -> None:
        """Re-create the guest's disk from ``spec.image`` with ``spec``'s name, password,
        metadata and files (same ports, same flavor) and boot it: RUNNING on return.
        User data and the key pair stay those the guest was created with when
        ``spec`` has none. A guest the driver does not know is created from
        ``spec``. DriverError on failure (the agent then puts the server in ERROR)."""

    @abc.abstractmethod
    async def snapshot(self, server_id: UUID) -> int:
        """Copy the guest's root disk (running or stopped; the guest is unchanged) and
        return the copy's size in bytes. DriverError if there is no such guest or
        the copy fails. Safe to repeat."""

    @abc.abstractmethod
    async def vnc_endpoint(self, server_id: UUID) -> tuple[str, int] | None:
        """``(host, port)`` where the running guest's VNC server listens, reachable from
        the console proxy; None if the guest is unknown, not running, or the driver
        has no VNC. Safe to repeat (the same endpoint while the guest runs)."""
