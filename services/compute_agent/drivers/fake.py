"""A real driver of a simulated host: guests live in memory, time passes for real.

It keeps the host's capacity and refuses a guest that does not fit, takes
configurable time for each operation, and writes a console log of what it
simulates, so the rest of the system sees what a small hypervisor would show.

With ``state_dir`` set it also writes what each guest was given, where a real
host keeps its disks (``fake_disk``).

Each guest asked for its console gets a real little VNC server on 127.0.0.1
(``fake_vnc``), closed when the guest is destroyed.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import msgspec

from services.compute_agent.drivers.base import (
    DriverError,
    GuestInfo,
    GuestSpec,
    HostResources,
    HypervisorDriver,
)
from services.compute_agent.drivers.fake_console import boot_lines, creation_lines
from services.compute_agent.drivers.fake_disk import disk_usage, guest_relative_path, write_disk
from services.compute_agent.drivers.fake_vnc import FakeVncServer
from shared.contracts.common import ImageSpec
from shared.states import PowerState

__all__ = ["FakeDriver", "FakeSettings", "guest_relative_path"]


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
    reboot_delay_s: float = 1.0
    """How long a reboot keeps the guest down before it boots again (soft and hard)."""
    power_off_delay_s: float = 0.5
    """How long a guest takes to shut down when powered off (os-stop)."""
    power_on_delay_s: float = 0.5
    """How long a stopped guest takes to boot when powered on (os-start)."""
    rescue_delay_s: float = 1.0
    """How long booting into a rescue image, or back out of it, takes."""
    state_dir: str = ""
    """Directory where each guest's injected files, user data and config drive
    are written (``<state_dir>/<host>/<server_id>/``, see the module docstring);
    empty keeps nothing on disk. For tests and development: it costs a few
    small file writes per spawn."""
    snapshot_delay_s: float = 2.0
    """How long copying a guest's root disk into an image takes (createImage);
    real snapshots take tens of seconds to minutes."""


class _Guest(msgspec.Struct, kw_only=True):
    spec: GuestSpec
    power_state: PowerState
    console: list[str]
    vnc: FakeVncServer | None = None
    """The guest's VNC server, started the first time its console is asked for."""
    rescued: bool = False
    """Booted from a rescue image, its own disk attached as the second one."""


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

    def guest_dir(self, server_id: UUID) -> Path | None:
        """Where the guest's record is kept; None without ``state_dir``."""
        if not self._settings.state_dir:
            return None
        return Path(self._settings.state_dir) / self._host / str(server_id)

    async def spawn(self, spec: GuestSpec) -> None:
        async with self._lock:
            if spec.server_id in self._guests:
                return
            if self._used_ram() + spec.flavor.ram_mb > self._settings.ram_mb:
                raise DriverError(f"host {self._host} has not enough memory for "
                                  f"{spec.flavor.ram_mb} MB")
            guest = _Guest(spec=spec, power_state=PowerState.NOSTATE, console=[])
            self._guests[spec.server_id] = guest
        try:
            await self._boot(guest)
        except BaseException:
            # A failed spawn leaves nothing: neither the guest nor its record.
            if self._guests.get(spec.server_id) is guest:
                del self._guests[spec.server_id]
            await self._remove_record(spec.server_id)
            raise

    async def _boot(self, guest: _Guest) -> None:
        spec = guest.spec
        for line in creation_lines(spec):
            _log(guest, line)
        target = self.guest_dir(spec.server_id)
        if target is not None:
            try:
                await asyncio.to_thread(write_disk, target, spec)
            except OSError as exc:
                raise DriverError(f"cannot prepare the disks of {spec.server_id}: {exc}") from None
        await asyncio.sleep(self._settings.spawn_delay_s)
        if self._guests.get(spec.server_id) is not guest:  # destroyed while booting
            raise DriverError(f"guest {spec.server_id} was destroyed while spawning")
        _log_boot(guest)

    async def destroy(self, server_id: UUID) -> None:
        guest = self._guests.pop(server_id, None)
        if guest is not None and guest.vnc is not None:
            await guest.vnc.close()
        # The record goes even when the guest is unknown: after an agent restart
        # the in-memory guests are gone but their records are still on disk.
        await self._remove_record(server_id)
        if guest is not None:
            _log(guest, "nimbus-fake: guest destroyed")
            await asyncio.sleep(self._settings.destroy_delay_s)

    async def _remove_record(self, server_id: UUID) -> None:
        target = self.guest_dir(server_id)
        if target is not None:
            await asyncio.to_thread(functools.partial(shutil.rmtree, target, ignore_errors=True))

    async def get_info(self, server_id: UUID) -> GuestInfo | None:
        guest = self._guests.get(server_id)
        if guest is None:
            return None
        return GuestInfo(server_id=server_id, power_state=guest.power_state,
                         ram_mb=guest.spec.flavor.ram_mb, vcpus=guest.spec.flavor.vcpus,
                         rescued=guest.rescued)

    async def list_instances(self) -> list[UUID]:
        return list(self._guests)

    async def console_output(self, server_id: UUID) -> str:
        guest = self._guests.get(server_id)
        if guest is None:
            raise DriverError(f"no guest {server_id} on this host")
        return "\n".join(guest.console) + "\n"

    # --- reboot, power off/on, rescue (issue 4) ---
    # Each writes what a guest's serial console would show, so the console log
    # tells the story: shutdown lines, then the boot lines again.

    def _known(self, server_id: UUID) -> _Guest:
        guest = self._guests.get(server_id)
        if guest is None:
            raise DriverError(f"no guest {server_id} on this host")
        return guest

    def _still_there(self, guest: _Guest, doing: str) -> None:
        if self._guests.get(guest.spec.server_id) is not guest:
            raise DriverError(f"guest {guest.spec.server_id} was destroyed while {doing}")

    async def reboot(self, server_id: UUID, *, hard: bool) -> None:
        guest = self._known(server_id)
        delay = self._settings.reboot_delay_s
        if not hard and guest.power_state is not PowerState.RUNNING:
            # A guest that is not running cannot shut itself down: as libvirt's
            # driver does, a soft reboot falls back to a hard one.
            _log(guest, "nimbus-fake: guest not running, soft reboot falls back to hard")
            hard = True
        if hard:
            _log(guest, "nimbus-fake: hard reboot: resetting the guest")
            guest.power_state = PowerState.SHUTDOWN
            await asyncio.sleep(delay)
        else:
            _log(guest, "nimbus-fake: soft reboot: ACPI reboot request sent to the guest")
            _log(guest, "The system is going down for reboot NOW!")
            _log(guest, " * Stopping all remaining processes")
            await asyncio.sleep(delay / 2)
            self._still_there(guest, "rebooting")
            _log(guest, "reboot: Restarting system")
            guest.power_state = PowerState.SHUTDOWN
            await asyncio.sleep(delay / 2)
        self._still_there(guest, "rebooting")
        _log_boot(guest)

    async def power_off(self, server_id: UUID) -> None:
        guest = self._known(server_id)
        if guest.power_state is PowerState.SHUTDOWN:
            return
        _log(guest, "nimbus-fake: ACPI power button pressed")
        _log(guest, "The system is going down for power off NOW!")
        await asyncio.sleep(self._settings.power_off_delay_s)
        self._still_there(guest, "powering off")
        _log(guest, "reboot: Power down")
        guest.power_state = PowerState.SHUTDOWN

    async def power_on(self, server_id: UUID) -> None:
        guest = self._known(server_id)
        if guest.power_state is PowerState.RUNNING:
            return
        _log(guest, "nimbus-fake: powering on")
        guest.power_state = PowerState.SHUTDOWN
        await asyncio.sleep(self._settings.power_on_delay_s)
        self._still_there(guest, "powering on")
        _log_boot(guest)

    async def rescue(self, server_id: UUID, *, admin_pass: str, image: ImageSpec | None) -> None:
        # The password is set inside the rescue system; it never reaches the console.
        guest = self._known(server_id)
        if guest.rescued:
            return
        rescue_image = image.name if image is not None else "the default rescue image"
        _log(guest, "nimbus-fake: rescue: stopping the guest")
        guest.power_state = PowerState.SHUTDOWN
        _log(guest, f"nimbus-fake: rescue: booting {rescue_image}, the guest's own disk "
                    "attached as the second disk")
        await asyncio.sleep(self._settings.rescue_delay_s)
        self._still_there(guest, "rescuing")
        guest.rescued = True
        _log_boot(guest)

    async def unrescue(self, server_id: UUID) -> None:
        guest = self._known(server_id)
        if not guest.rescued:
            return
        _log(guest, "nimbus-fake: unrescue: stopping the rescue system")
        guest.power_state = PowerState.SHUTDOWN
        _log(guest, "nimbus-fake: unrescue: booting from the guest's own disk")
        await asyncio.sleep(self._settings.rescue_delay_s)
        self._still_there(guest, "unrescuing")
        guest.rescued = False
        _log_boot(guest)

    # --- rebuild, snapshot, VNC console (issue 4) ---

    async def rebuild(self, spec: GuestSpec) -> None:
        guest = self._guests.get(spec.server_id)
        if guest is None:
            # After an agent restart the guest is unknown here: rebuilding
            # creates it afresh from the new image.
            await self.spawn(spec)
            return
        old = guest.spec
        spec = _rebuilt_spec(old, spec)
        _log(guest, f"nimbus-fake: rebuilding guest {old.name} from image {spec.image.name} "
                    f"(was {old.image.name})")
        guest.power_state = PowerState.SHUTDOWN
        _log(guest, "nimbus-fake: guest powered off, root disk re-imaged")
        await asyncio.sleep(self._settings.destroy_delay_s)
        if self._guests.get(spec.server_id) is not guest:
            raise DriverError(f"guest {spec.server_id} was destroyed while rebuilding")
        guest.spec = spec
        guest.power_state = PowerState.NOSTATE
        await self._boot(guest)  # rewrites the record (files, config drive) for the new disk

    async def snapshot(self, server_id: UUID) -> int:
        guest = self._guests.get(server_id)
        if guest is None:
            raise DriverError(f"no guest {server_id} on this host")
        spec = guest.spec
        _log(guest, f"nimbus-fake: snapshot of the root disk started (image {spec.image.name}, "
                    f"{spec.flavor.disk_gb} GB disk)")
        await asyncio.sleep(self._settings.snapshot_delay_s)
        if self._guests.get(server_id) is not guest:
            raise DriverError(f"guest {server_id} was destroyed while being snapshotted")
        size = disk_usage(guest.spec, sum(len(line) + 1 for line in guest.console))
        _log(guest, f"nimbus-fake: snapshot of the root disk done ({size} bytes)")
        return size

    async def vnc_endpoint(self, server_id: UUID) -> tuple[str, int] | None:
        guest = self._guests.get(server_id)
        if guest is None or guest.power_state is not PowerState.RUNNING:
            return None
        async with self._lock:  # two requests at once get one server
            if guest.vnc is None:
                vnc = FakeVncServer(guest.spec.name)
                await vnc.start("127.0.0.1")
                guest.vnc = vnc
                _log(guest, f"nimbus-fake: VNC server listening on 127.0.0.1:{vnc.port}")
        assert guest.vnc.port is not None
        return ("127.0.0.1", guest.vnc.port)


def _rebuilt_spec(old: GuestSpec, new: GuestSpec) -> GuestSpec:
    """The guest after a rebuild: ``new`` (image, name, password, metadata, files),
    keeping the user data and key the guest was created with, which the agent
    does not keep and a rebuild does not change."""
    user_data = new.user_data if new.user_data is not None else old.user_data
    drive = new.config_drive
    if drive is not None and old.config_drive is not None:
        drive = msgspec.structs.replace(
            drive, public_key=drive.public_key or old.config_drive.public_key,
            user_data=drive.user_data if drive.user_data is not None else old.config_drive.user_data)
    return msgspec.structs.replace(new, user_data=user_data, config_drive=drive)


def _log_boot(guest: _Guest) -> None:
    """The guest comes up: the kernel boots, the NICs get their addresses, a login
    prompt. Every boot writes these lines, so a reboot shows as a new boot."""
    guest.power_state = PowerState.RUNNING
    for line in boot_lines(guest.spec):
        _log(guest, line)


def _log(guest: _Guest, line: str) -> None:
    stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    guest.console.append(f"[{stamp}] {line}")
