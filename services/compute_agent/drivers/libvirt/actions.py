"""What the libvirt driver does to a guest that exists: power, reboot, rescue,
rebuild, snapshot and VNC. A mixin of :class:`LibvirtDriver` (``driver``), which
provides the files, the domain helpers and the per-guest locks used here.

A guest booted from a volume: rescue boots the rescue disk with the volume second,
as it does an image's overlay (the other volumes wait for unrescue, as in Nova's
rescue); it has no image of its own, so a rescue image must be given (as Nova's
rescue of a volume-backed server takes the one the volume was made from, or
``rescue_image_ref``). Rebuild and snapshot are refused (the API refuses them
first, as Nova does for a volume-backed server: there is no image disk to make
again or copy; the volume can be snapshotted instead).
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING
from uuid import UUID

import libvirt
import msgspec
import structlog

from services.compute_agent.drivers.base import DriverError, GuestSpec
from services.compute_agent.drivers.configdrive import build_config_drive
from services.compute_agent.drivers.libvirt import disks, domain
from services.compute_agent.drivers.libvirt.states import power_state
from shared.contracts.common import ImageSpec
from shared.image_store import ImageFile, ImageStore
from shared.states import PowerState

if TYPE_CHECKING:
    from services.compute_agent.drivers.libvirt.driver import LibvirtDriver as _Base
else:
    _Base = object

log = structlog.get_logger(__name__)

_RESCUE_FILES = ("rescue.qcow2", "rescue-config.iso", "original.xml")


class GuestActions(_Base):
    # --- power ---

    async def power_off(self, server_id: UUID, *, timeout_s: float) -> None:
        async with self._lock(server_id):
            await self._power_off(server_id, timeout_s)

    async def _power_off(self, server_id: UUID, timeout_s: float) -> None:
        """ACPI power button, wait up to ``timeout_s`` for SHUTOFF, then cut the power."""
        state = await self._known_state(server_id)
        if power_state(*state) is PowerState.CRASHED:
            await self._acknowledge_crash(server_id)
            return
        if await self._is_off(server_id):
            return
        if timeout_s > 0 and power_state(*state) is PowerState.RUNNING:
            try:
                await self._on_domain(server_id, "shut down the server", "shutdown")
            except DriverError:
                log.info("libvirt.acpi_refused", server_id=str(server_id))
            else:
                if await self._conn.wait_for(server_id, lambda: self._is_off(server_id),
                                             timeout_s=timeout_s):
                    log.info("libvirt.shut_down_cleanly", server_id=str(server_id))
                    return
                log.info("libvirt.shutdown_timed_out", server_id=str(server_id),
                         timeout_s=timeout_s)
        await self._hard_stop(server_id)

    async def _acknowledge_crash(self, server_id: UUID) -> None:
        """Turn a crashed guest (QEMU died under it) into a stopped one: libvirt keeps
        "crashed" as the reason until the domain runs again, so it is started paused
        (no guest code runs) and destroyed, which leaves it SHUTDOWN."""
        def cycle(c: libvirt.virConnect) -> None:
            dom = c.lookupByUUIDString(str(server_id))
            if not dom.isActive():
                dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
            dom.destroy()
        await self._conn.call(cycle, "power off the server")
        log.info("libvirt.crash_acknowledged", server_id=str(server_id))

    async def power_on(self, server_id: UUID) -> None:
        async with self._lock(server_id):
            await self._start(server_id)

    async def reboot(self, server_id: UUID, *, hard: bool) -> None:
        async with self._lock(server_id):
            await self._known_state(server_id)
            if hard:
                await self._hard_stop(server_id)
            else:  # a guest that does not answer in time gets a hard one
                await self._power_off(server_id, self._shutdown_timeout_s)
            await self._start(server_id)

    # --- rescue ---

    async def rescue(self, server_id: UUID, *, admin_pass: str, image: ImageSpec | None) -> None:
        async with self._lock(server_id):
            xml = await self._xml(server_id, libvirt.VIR_DOMAIN_XML_INACTIVE)
            if domain.read_rescued(xml):
                await self._start(server_id)
                return
            spec = await asyncio.to_thread(self._load_spec, server_id)
            if spec is None:
                raise DriverError("The server cannot be rescued: its definition is incomplete.")
            d = self.guest_dir(server_id)
            rescue_image = image or spec.image
            if rescue_image is None:
                raise DriverError("The server boots from a volume: a rescue image must be "
                                  "given to rescue it.")
            rescue_spec = msgspec.structs.replace(
                spec, image=rescue_image,
                config=msgspec.structs.replace(spec.config, admin_pass=admin_pass))
            await asyncio.to_thread(_write, d / "original.xml", xml)
            try:
                await self._make_disk(spec, rescue_image, d / "rescue.qcow2")
                await asyncio.to_thread(build_config_drive, rescue_spec, d / "rescue-config.iso")
                # Cleanly, as Nova does: the disk the rescue system mounts is not dirty.
                await self._power_off(server_id, self._shutdown_timeout_s)
                await self._define(domain.build(spec, self._layout(server_id, spec, rescue=True)))
            except BaseException:
                await asyncio.shield(self._restore(server_id, xml))
                raise
            await self._start(server_id)

    async def unrescue(self, server_id: UUID) -> None:
        async with self._lock(server_id):
            xml = await self._xml(server_id, libvirt.VIR_DOMAIN_XML_INACTIVE)
            if domain.read_rescued(xml):
                original = await asyncio.to_thread(_read, self.guest_dir(server_id)
                                                   / "original.xml")
                if original is None:  # lost: the definition is made again from the spec
                    spec = await asyncio.to_thread(self._load_spec, server_id)
                    if spec is None:
                        raise DriverError("The server's own definition is lost.")
                    # The volumes it was created with: those attached since were
                    # in the lost definition only.
                    volumes = tuple(self._volume_disk(v) for v in spec.volumes if not v.boot)
                    original = domain.build(spec, self._layout(server_id, spec,
                                                               volumes=volumes))
                await self._hard_stop(server_id)
                await self._restore(server_id, original)
            await self._start(server_id)

    async def _restore(self, server_id: UUID, original: str) -> None:
        """Define ``original`` again and remove the rescue's files."""
        await self._define(original)
        d = self.guest_dir(server_id)
        for name in _RESCUE_FILES:
            await asyncio.to_thread((d / name).unlink, missing_ok=True)

    # --- rebuild ---

    async def rebuild(self, spec: GuestSpec) -> None:
        sid = spec.server_id
        async with self._lock(sid):
            if await self._state(sid) is None:
                await self._spawn(spec)
                return
            own = await self._xml(sid, libvirt.VIR_DOMAIN_XML_INACTIVE)
            if spec.image is None or domain.read_boot_volume(own) is not None:
                raise DriverError("A server booted from a volume cannot be rebuilt.")
            volumes = tuple(domain.read_volumes(own))  # attached volumes stay attached
            old = await asyncio.to_thread(self._load_spec, sid)
            if old is not None:  # user data and keys stay unless given again
                spec = msgspec.structs.replace(spec, config=spec.config.rebuilt_from(old.config))
            await self._hard_stop(sid)
            d = self.guest_dir(sid)
            for name in _RESCUE_FILES:
                await asyncio.to_thread((d / name).unlink, missing_ok=True)
            await self._make_files(spec)
            await self._define(domain.build(spec, self._layout(sid, spec, volumes=volumes)))
            await self._start(sid)
            log.info("libvirt.rebuilt", server_id=str(sid), image=str(spec.image.id))

    # --- snapshot, VNC ---

    async def snapshot(self, server_id: UUID, image_id: UUID) -> ImageFile:
        location = ImageStore.location_for(image_id, "qcow2")
        async with self._lock(server_id):
            state, _ = await self._known_state(server_id)
            if domain.read_boot_volume(await self._xml(server_id)) is not None:
                raise DriverError("A server booted from a volume has no image disk to copy; "
                                  "snapshot its volume instead.")
            paused = state == libvirt.VIR_DOMAIN_RUNNING
            if paused:  # a consistent copy: the guest writes nothing meanwhile
                await self._on_domain(server_id, "pause the server", "suspend")
            try:
                with self._store.writing(location) as part:
                    await disks.convert(self.guest_dir(server_id) / "disk.qcow2", part,
                                        fake=self._settings.fake_disks)
            except OSError as exc:
                log.error("libvirt.snapshot_failed", server_id=str(server_id), error=str(exc))
                raise DriverError("The server's disk could not be copied.") from None
            finally:
                if paused:
                    await self._on_domain(server_id, "resume the server", "resume")
        return await asyncio.to_thread(self._store.file, location, "qcow2")

    async def vnc_endpoint(self, server_id: UUID) -> tuple[str, int] | None:
        if not await self._is_running(server_id):
            return None
        port = domain.read_vnc_port(await self._xml(server_id))
        return None if port is None else (self._settings.vnc_listen, port)


def _write(path: os.PathLike[str], text: str) -> None:
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _read(path: os.PathLike[str]) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


__all__ = ["GuestActions"]
