"""Volumes on a libvirt guest: a :class:`BlockDevice` as the guest's disk, attach and
detach. A mixin of :class:`LibvirtDriver` (``driver``), as ``actions`` is.

A volume's bits are a file in the volume store (``shared.volume_store``) that the
volume service owns: the driver points a disk at that file, and never copies,
moves or deletes it (destroying a guest removes its own directory, which holds no
volume). The disk's XML is ``domain``'s (:func:`domain.volume_xml`); a volume
attached to a guest is known by its disk's alias, in the persistent definition
(what the guest has at its next boot) and in the live one (what it has now).

Attach: a running guest gets the disk live and in its definition at once, which
the ``pc`` machine hot-plugs through ACPI (the tiny guest's kernel has acpiphp
built in and prints ``nimbus-disk: vdb added``); a stopped guest gets it in its
definition only. Both survive a stop and start or a hard reboot, which start the
persistent definition again.

Detach from a running guest is a request the guest answers by releasing the
device: libvirt's detach by alias sends it and returns at once (its detach by
XML would wait up to 5 s in a thread, answered or not).
:meth:`VolumeActions.detach_volume` waits for the disk to leave the live
definition (woken by libvirt's device-removed event) and asks again a few times,
as Nova's detach does (a guest still booting misses the request); a request
libvirt refuses outright is waited out once (the disk may be leaving already),
then its refusal is the answer. The persistent definition loses the disk only
once the guest has let go, so a guest that never answers keeps the volume
attached in both and the detach fails.

A rescued guest runs a temporary definition (``actions``): volumes are neither
attached nor detached then (the API refuses it, as Nova does), so the guest's own
definition, restored by unrescue, is the one that holds them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from uuid import UUID

import libvirt
import structlog

from services.compute_agent.drivers.base import (
    DriverError,
    GuestNotFound,
    HypervisorUnavailable,
)
from services.compute_agent.drivers.libvirt import domain
from shared.contracts.compute import BlockDevice

if TYPE_CHECKING:
    from services.compute_agent.drivers.libvirt.driver import LibvirtDriver as _Base
else:
    _Base = object

log = structlog.get_logger(__name__)

_DEVICE = re.compile(r"^(?:/dev/)?(?:vd|sd|xvd|hd)([b-z])$")
"""The API's device name (``/dev/vdb``; ``sdb``, ``xvdb`` and ``hdb`` as Nova accepts
them): every volume is a virtio disk, ``vd`` plus that letter."""
FORMATS = ("qcow2", "raw")
LIVE, CONFIG = libvirt.VIR_DOMAIN_AFFECT_LIVE, libvirt.VIR_DOMAIN_AFFECT_CONFIG


def target_for(device: str) -> str:
    """libvirt's target for the API's device name (``/dev/vdc`` -> ``vdc``)."""
    m = _DEVICE.match(device)
    if m is None:
        raise DriverError(f"A volume cannot be attached as {device}: "
                          "use a device from /dev/vdb to /dev/vdz.")
    return f"vd{m.group(1)}"


def _find(disks: Iterable[domain.VolumeDisk], volume_id: UUID) -> domain.VolumeDisk | None:
    return next((d for d in disks if d.volume_id == volume_id), None)


class VolumeActions(_Base):
    def _volume_disk(self, device: BlockDevice, *, target: str | None = None
                     ) -> domain.VolumeDisk:
        """The disk of ``device`` (at ``target``, else at its own device name); no I/O."""
        if self._volumes is None:
            raise DriverError("This host has no volume store; it cannot attach volumes.")
        connection = device.connection
        if connection.format not in FORMATS:
            raise DriverError(f"The volume {device.volume_id} is in a format this host "
                              "cannot attach.")
        try:
            path = self._volumes.connect(connection)
        except ValueError:
            log.error("libvirt.volume_unreachable", volume_id=str(device.volume_id),
                      type=connection.driver_volume_type, name=connection.name)
            raise DriverError(f"The volume {device.volume_id} cannot be reached from "
                              "this host.") from None
        return domain.VolumeDisk(volume_id=device.volume_id, path=path,
                                 format=connection.format,
                                 target=target or target_for(device.device))

    async def _check_files(self, disks: Iterable[domain.VolumeDisk]) -> None:
        """DriverError unless every volume's file is there (QEMU would fail to open it)."""
        for disk in disks:
            if not await asyncio.to_thread(disk.path.is_file):
                log.error("libvirt.volume_missing", volume_id=str(disk.volume_id),
                          path=str(disk.path))
                raise DriverError(f"The volume {disk.volume_id} has no data in the "
                                  "volume store.")

    async def _is_active(self, server_id: UUID) -> bool:
        """Whether the guest's QEMU runs (running or paused): it has a live definition."""
        return bool(await self._on_domain(server_id, "read the server's state", "isActive"))

    async def _own_definition(self, server_id: UUID) -> str:
        """The persistent definition; DriverError while the guest is rescued."""
        xml = await self._xml(server_id, libvirt.VIR_DOMAIN_XML_INACTIVE)
        if domain.read_rescued(xml):
            raise DriverError("The server is in rescue mode: unrescue it first.")
        return xml

    # --- attach ---

    async def attach_volume(self, server_id: UUID, device: BlockDevice) -> None:
        disk = self._volume_disk(device)
        await self._check_files((disk,))
        async with self._lock(server_id):
            flags = CONFIG if _lacks(await self._own_definition(server_id), disk) else 0
            if await self._is_active(server_id) and _lacks(await self._xml(server_id), disk):
                flags |= LIVE
            if not flags:  # already attached: a redelivered message
                return
            await self._on_domain(server_id, "attach the volume", "attachDeviceFlags",
                                  domain.volume_xml(disk), flags)
        log.info("libvirt.volume_attached", server_id=str(server_id),
                 volume_id=str(device.volume_id), target=disk.target, live=bool(flags & LIVE))

    # --- detach ---

    async def detach_volume(self, server_id: UUID, volume_id: UUID) -> None:
        async with self._lock(server_id):
            own = await self._own_definition(server_id)
            if domain.read_boot_volume(own) == volume_id:
                raise DriverError("The volume is the server's boot disk; it cannot be "
                                  "detached.")
            if not await self._unplugged(server_id, volume_id):
                await self._unplug(server_id, volume_id)
            if _find(domain.read_volumes(own), volume_id) is not None:
                await self._on_domain(server_id, "detach the volume", "detachDeviceAlias",
                                      domain.volume_alias(volume_id), CONFIG)
        log.info("libvirt.volume_detached", server_id=str(server_id), volume_id=str(volume_id))

    async def _unplug(self, server_id: UUID, volume_id: UUID) -> None:
        """Ask the running guest to release the disk until it has (DriverError if it
        never does: the disk stays)."""
        alias = domain.volume_alias(volume_id)
        attempts = self._settings.detach_attempts
        for attempt in range(1, attempts + 1):
            refused: DriverError | None = None
            try:
                await self._on_domain(server_id, "detach the volume", "detachDeviceAlias",
                                      alias, LIVE)
            except (GuestNotFound, HypervisorUnavailable):
                raise
            except DriverError as exc:
                # The disk may be on its way out already (the guest released it, libvirt
                # has not heard yet), or an earlier request still pending: wait all the same.
                refused = exc
            if await self._conn.wait_for(
                    server_id, lambda: self._unplugged(server_id, volume_id),
                    timeout_s=self._settings.detach_timeout_s):
                return
            if refused is not None and attempt == 1:
                raise refused  # the hypervisor's own refusal: asking again would not help
            log.warning("libvirt.volume_not_released", server_id=str(server_id),
                        volume_id=str(volume_id), attempt=attempt, attempts=attempts)
        raise DriverError("The guest did not release the volume; it is still attached.")

    async def _unplugged(self, server_id: UUID, volume_id: UUID) -> bool:
        """The live guest has no such disk (or no longer runs)."""
        if not await self._is_active(server_id):
            return True
        return _find(domain.read_volumes(await self._xml(server_id)), volume_id) is None


def _lacks(xml: str, disk: domain.VolumeDisk) -> bool:
    """Whether the definition lacks the volume; DriverError if another disk has its target."""
    if _find(domain.read_volumes(xml), disk.volume_id) is not None:
        return False
    if disk.target in domain.read_targets(xml):
        raise DriverError(f"The server already has a disk at /dev/{disk.target}.")
    return True


__all__ = ["VolumeActions", "target_for"]
