"""A real driver of a simulated host: guests live in memory, time passes for real.

It keeps the host's capacity and refuses a guest that does not fit, takes
configurable time for each operation, and writes a console log of what it
simulates, so the rest of the system sees what a small hypervisor would show.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import UUID

import msgspec

from services.compute_agent.drivers.base import (
    DriverError,
    GuestInfo,
    GuestSpec,
    HostResources,
    HypervisorDriver,
)
from shared.states import PowerState


class FakeSettings(msgspec.Struct, frozen=True, kw_only=True):
    ram_mb: int = 65536
    """RAM of the simulated host."""
    disk_gb: int = 2000
    """Disk of the simulated host."""
    vcpus: int = 32
    """Physical cores of the simulated host."""
    spawn_delay_s: float = 1.0
    """How long a spawn takes; real hypervisors take seconds to minutes."""
    destroy_delay_s: float = 0.2
    """How long tearing a guest down takes."""


class _Guest(msgspec.Struct, kw_only=True):
    spec: GuestSpec
    power_state: PowerState
    console: list[str]


class FakeDriver(HypervisorDriver):
    def __init__(self, settings: FakeSettings, *, host: str) -> None:
        self._settings = settings
        self._host = host
        self._guests: dict[UUID, _Guest] = {}
        self._lock = asyncio.Lock()

    async def host_resources(self) -> HostResources:
        s = self._settings
        return HostResources(ram_mb=s.ram_mb, disk_gb=s.disk_gb, vcpus=s.vcpus)

    def _used_ram(self) -> int:
        return sum(g.spec.flavor.ram_mb for g in self._guests.values())

    async def spawn(self, spec: GuestSpec) -> None:
        async with self._lock:
            if spec.server_id in self._guests:
                return
            if self._used_ram() + spec.flavor.ram_mb > self._settings.ram_mb:
                raise DriverError(f"host {self._host} has not enough memory for "
                                  f"{spec.flavor.ram_mb} MB")
            guest = _Guest(spec=spec, power_state=PowerState.NOSTATE, console=[])
            self._guests[spec.server_id] = guest
        _log(guest, f"nimbus-fake: creating guest {spec.name} ({spec.flavor.vcpus} vCPU, "
                    f"{spec.flavor.ram_mb} MB) from image {spec.image.name}")
        if spec.config_drive is not None:
            _log(guest, f"nimbus-fake: config drive with {len(spec.config_drive.metadata)} "
                        f"metadata item(s) and {len(spec.config_drive.files)} file(s)")
        await asyncio.sleep(self._settings.spawn_delay_s)
        if spec.server_id not in self._guests:  # destroyed while booting
            raise DriverError(f"guest {spec.server_id} was destroyed while spawning")
        guest.power_state = PowerState.RUNNING
        _log(guest, "Booting the kernel.")
        for port in spec.ports:
            _log(guest, f"eth: {port.mac} got address {port.address}")
        _log(guest, f"{spec.name} login:")

    async def destroy(self, server_id: UUID) -> None:
        guest = self._guests.pop(server_id, None)
        if guest is not None:
            _log(guest, "nimbus-fake: guest destroyed")
            await asyncio.sleep(self._settings.destroy_delay_s)

    async def get_info(self, server_id: UUID) -> GuestInfo | None:
        guest = self._guests.get(server_id)
        if guest is None:
            return None
        return GuestInfo(server_id=server_id, power_state=guest.power_state,
                         ram_mb=guest.spec.flavor.ram_mb, vcpus=guest.spec.flavor.vcpus)

    async def list_instances(self) -> list[UUID]:
        return list(self._guests)

    async def console_output(self, server_id: UUID) -> str:
        guest = self._guests.get(server_id)
        if guest is None:
            raise DriverError(f"no guest {server_id} on this host")
        return "\n".join(guest.console) + "\n"


def _log(guest: _Guest, line: str) -> None:
    stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    guest.console.append(f"[{stamp}] {line}")
