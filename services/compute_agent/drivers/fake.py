"""A real driver of a simulated host: guests live in memory, time passes for real.

It keeps the host's capacity and refuses a guest that does not fit, takes
configurable time for each operation, and writes a console log of what it
simulates, so the rest of the system sees what a small hypervisor would show.

With ``state_dir`` set it also keeps, on disk, what each guest was given, so
tests (and curious developers) can check that injected files, user data and
the config drive reached the hypervisor::

    <state_dir>/<host>/<server_id>/
        user_data                 the decoded user data, if any
        files/<path>              each injected file (no config drive)
        config_drive/meta.js      the server metadata as JSON (with a config drive)
        config_drive/files/<path> each injected file (with a config drive)
        config_drive/public_key   the key pair's public key, if any
        config_drive/user_data    the user data, if any

The directory appears before the guest boots (as a disk is prepared before
boot) and goes with the guest on destroy or on a failed spawn.
"""

from __future__ import annotations

import asyncio
import functools
import json
import posixpath
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
from shared.contracts.compute import InjectedFile
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
    state_dir: str = ""
    """Directory where each guest's injected files, user data and config drive
    are written (``<state_dir>/<host>/<server_id>/``, see the module docstring);
    empty keeps nothing on disk. For tests and development: it costs a few
    small file writes per spawn."""


class _Guest(msgspec.Struct, kw_only=True):
    spec: GuestSpec
    power_state: PowerState
    console: list[str]


def guest_relative_path(path: str) -> str:
    """An injected file's path inside the guest's file system, made safe to join.

    The path is taken from the guest's root, as the guest would resolve it:
    ``..`` cannot climb above the root (``/../../etc/x`` is ``etc/x``), and
    empty and ``.`` components go. Raises DriverError for a path that names no
    file (``/``, ``..``) or holds a NUL byte.
    """
    if "\x00" in path:
        raise DriverError(f"injected file path {path!r} holds a NUL byte")
    relative = posixpath.normpath(posixpath.join("/", path)).lstrip("/")
    if not relative or relative == ".":
        raise DriverError(f"injected file path {path!r} names no file")
    return relative


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
        _log(guest, f"nimbus-fake: creating guest {spec.name} ({spec.flavor.vcpus} vCPU, "
                    f"{spec.flavor.ram_mb} MB) from image {spec.image.name}")
        if spec.config_drive is not None:
            _log(guest, f"nimbus-fake: config drive with {len(spec.config_drive.metadata)} "
                        f"metadata item(s) and {len(spec.config_drive.files)} file(s)")
        elif spec.files:
            _log(guest, f"nimbus-fake: injecting {len(spec.files)} file(s)")
        target = self.guest_dir(spec.server_id)
        if target is not None:
            try:
                await asyncio.to_thread(_write_record, target, spec)
            except OSError as exc:
                raise DriverError(f"cannot prepare the disks of {spec.server_id}: {exc}") from None
        await asyncio.sleep(self._settings.spawn_delay_s)
        if self._guests.get(spec.server_id) is not guest:  # destroyed while booting
            raise DriverError(f"guest {spec.server_id} was destroyed while spawning")
        guest.power_state = PowerState.RUNNING
        _log(guest, "Booting the kernel.")
        for port in spec.ports:
            _log(guest, f"eth: {port.mac} got address {port.address}")
        _log(guest, f"{spec.name} login:")

    async def destroy(self, server_id: UUID) -> None:
        guest = self._guests.pop(server_id, None)
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
                         ram_mb=guest.spec.flavor.ram_mb, vcpus=guest.spec.flavor.vcpus)

    async def list_instances(self) -> list[UUID]:
        return list(self._guests)

    async def console_output(self, server_id: UUID) -> str:
        guest = self._guests.get(server_id)
        if guest is None:
            raise DriverError(f"no guest {server_id} on this host")
        return "\n".join(guest.console) + "\n"


def _write_record(target: Path, spec: GuestSpec) -> None:
    """Write what the guest was given under ``target`` (blocking; run in a thread)."""
    shutil.rmtree(target, ignore_errors=True)  # a leftover of an earlier agent run
    target.mkdir(parents=True)
    if spec.user_data is not None:
        (target / "user_data").write_bytes(spec.user_data)
    drive = spec.config_drive
    if drive is None:
        _write_files(target / "files", spec.files)
        return
    root = target / "config_drive"
    root.mkdir()
    (root / "meta.js").write_text(json.dumps(drive.metadata, sort_keys=True))
    _write_files(root / "files", drive.files)
    if drive.public_key is not None:
        (root / "public_key").write_text(drive.public_key)
    if drive.user_data is not None:
        (root / "user_data").write_bytes(drive.user_data)


def _write_files(root: Path, files: tuple[InjectedFile, ...]) -> None:
    for injected in files:
        dest = root / guest_relative_path(injected.path)
        # guest_relative_path already keeps the path below the root; this holds
        # even if that logic ever changes.
        if not dest.resolve().is_relative_to(root.resolve()):
            raise DriverError(f"injected file path {injected.path!r} leaves the guest")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(injected.contents)
        except OSError as exc:  # e.g. one file's path is another's directory
            raise DriverError(f"cannot inject {injected.path!r}: {exc.strerror}") from None


def _log(guest: _Guest, line: str) -> None:
    stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    guest.console.append(f"[{stamp}] {line}")
