"""LibvirtDriver: each guest is a QEMU virtual machine, a libvirt domain named
``nimbus-<server id>`` whose uuid is the server's id.

A guest's files live in ``<state_dir>/<host>/guests/<server id>/``: ``disk.qcow2``
(an overlay of the store's image; none for a guest booted from a volume, whose
root disk is the volume's file itself), ``config.iso`` (the config drive),
``console.log`` (the serial console, appended to by QEMU), ``spec.json`` (what the
guest was made from, for rescue and rebuild) and, while rescued, ``rescue.qcow2``,
``rescue-config.iso`` and ``original.xml`` (the definition unrescue restores).
The domain's own ``<metadata>`` says whether it is rescued (``domain``).
Volumes are files of the volume store, never the guest's (``volumes``).

Operations on one guest are serialised (one asyncio lock per guest), so a message
the agent delivers twice waits for the first and then finds its work done.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from uuid import UUID

import libvirt
import msgspec
import structlog

from services.compute_agent.drivers.base import (
    Capabilities,
    DriverContext,
    DriverError,
    GuestInfo,
    GuestNotFound,
    GuestSpec,
    HostResources,
    HypervisorDriver,
)
from services.compute_agent.drivers.configdrive import build_config_drive
from services.compute_agent.drivers.libvirt import disks, domain, embed
from services.compute_agent.drivers.libvirt.actions import GuestActions
from services.compute_agent.drivers.libvirt.connection import Connection
from services.compute_agent.drivers.libvirt.settings import LibvirtSettings
from services.compute_agent.drivers.libvirt.states import power_state
from services.compute_agent.drivers.libvirt.volumes import VolumeActions
from shared.contracts.common import ImageSpec
from shared.states import PowerState

log = structlog.get_logger(__name__)

CONSOLE_MAX_BYTES = 1024 * 1024
START_TIMEOUT_S = 60.0

class LibvirtDriver(VolumeActions, GuestActions, HypervisorDriver):
    name = "libvirt"
    capabilities = Capabilities(rescue=True, snapshot=True, vnc_console=True,
                                console_output=True, volumes=True)

    def __init__(self, settings: LibvirtSettings, context: DriverContext) -> None:
        self._settings = settings
        self._store = context.image_store
        self._volumes = context.volume_store
        self._shutdown_timeout_s = context.shutdown_timeout_s
        self.home = Path(settings.state_dir).absolute() / context.host
        self.uri = settings.uri or embed.embed_uri(self.home / "libvirt")
        self._conn = Connection(self.uri)
        self._locks: dict[UUID, asyncio.Lock] = {}
        use_kvm = settings.allow_kvm and os.path.exists("/dev/kvm")
        self._domain_type = "kvm" if use_kvm else "qemu"

    @classmethod
    def from_settings(cls, settings: LibvirtSettings, context: DriverContext) -> LibvirtDriver:
        return cls(settings, context)

    # --- host ---

    async def init_host(self) -> None:
        if self.uri.startswith("qemu:"):
            missing = [tool for tool in ("qemu-system-x86_64", "qemu-img")
                       if shutil.which(tool) is None]
            if missing:
                raise DriverError(f"QEMU is not installed on this host ({', '.join(missing)} "
                                  "not found).")
        if embed.is_embed(self.uri):
            await asyncio.to_thread(embed.prepare_root, self.home / "libvirt",
                                    vnc_ports=(self._settings.vnc_port_min,
                                               self._settings.vnc_port_max))
        await asyncio.to_thread((self.home / "guests").mkdir, parents=True, exist_ok=True)
        try:
            await self._conn.open()
        except DriverError:
            raise DriverError(f"libvirt could not open its hypervisor ({self.uri}); "
                              "is libvirt's QEMU driver installed?") from None

    async def cleanup(self) -> None:
        await self._conn.close()

    async def host_resources(self) -> HostResources:
        info = await self._conn.call(lambda c: c.getInfo(), "describe the host")
        disk = await asyncio.to_thread(shutil.disk_usage, self.home)
        return HostResources(ram_mb=info[1], vcpus=info[2], disk_gb=disk.total // disks.GIB)

    # --- files ---

    def guest_dir(self, server_id: UUID) -> Path:
        return self.home / "guests" / str(server_id)

    def _layout(self, server_id: UUID, spec: GuestSpec, *, rescue: bool = False,
                volumes: tuple[domain.VolumeDisk, ...] = ()) -> domain.Layout:
        """The guest's files; ``volumes``: the volumes attached besides its root disk
        (a rescue has none: only the root, after the rescue disk)."""
        d = self.guest_dir(server_id)
        own_drive = d / "config.iso" if self._wants_drive(spec) else None
        boot = spec.boot_volume
        root = self._volume_disk(boot, target="vda") if boot else d / "disk.qcow2"
        return domain.Layout(
            disks=(d / "rescue.qcow2", root) if rescue else (root,),
            volumes=() if rescue else volumes,
            config_drive=d / "rescue-config.iso" if rescue else own_drive,
            console_log=d / "console.log", domain_type=self._domain_type,
            vnc_listen=self._settings.vnc_listen, rescued=rescue)

    def _wants_drive(self, spec: GuestSpec) -> bool:
        return self._settings.force_config_drive or spec.config.wants_drive

    def _image_path(self, image: ImageSpec) -> Path:
        """The host's own copy of the image (``base/``, as Nova's image cache): the
        guests' overlays are backed by it, so deleting or replacing the image in
        the store never pulls a disk from under a guest."""
        if not image.location:
            raise DriverError(f"The image {image.id} has no data to boot from.")
        source = self._store.path(image.location)
        try:
            st = source.stat()
        except FileNotFoundError:
            log.error("disk.image_missing", image=str(image.id), location=image.location)
            raise DriverError(f"The image {image.id} has no data in the image store.") from None
        # Named by the file's identity too: an image file written again (a rebuilt
        # seed image) is a new cache entry, while guests keep the one they boot from.
        cached = self.home / "base" / f"{image.location}.{st.st_size:x}-{st.st_mtime_ns:x}"
        if not cached.is_file():
            try:
                _cache(source, cached)
            except FileNotFoundError:
                raise DriverError(f"The image {image.id} has no data in the image store.") from None
        return cached

    async def _make_disk(self, spec: GuestSpec, image: ImageSpec, dest: Path) -> None:
        base = await asyncio.to_thread(self._image_path, image)  # before the old disk goes
        await asyncio.to_thread(dest.unlink, missing_ok=True)
        await disks.create_overlay(base, image.disk_format, dest,
                                   spec.flavor.disk_gb, fake=self._settings.fake_disks)

    def _save_spec(self, spec: GuestSpec) -> None:
        # Never the admin password: it reached the guest's drive and goes no further.
        spec = msgspec.structs.replace(
            spec, config=msgspec.structs.replace(spec.config, admin_pass=None))
        path = self.guest_dir(spec.server_id) / "spec.json"
        path.with_suffix(".tmp").write_bytes(msgspec.json.encode(spec))
        os.replace(path.with_suffix(".tmp"), path)

    def _load_spec(self, server_id: UUID) -> GuestSpec | None:
        try:
            data = (self.guest_dir(server_id) / "spec.json").read_bytes()
        except FileNotFoundError:
            return None
        return msgspec.json.decode(data, type=GuestSpec)

    async def _make_files(self, spec: GuestSpec) -> None:
        """The guest's disk, config drive and spec file, made anew."""
        d = self.guest_dir(spec.server_id)
        # Owner-only: the guest's drive and spec hold what the user gave it.
        await asyncio.to_thread(d.mkdir, mode=0o700, parents=True, exist_ok=True)
        if spec.boot_volume is None:
            if spec.image is None:
                raise DriverError("The server has neither an image nor a volume to boot from.")
            await self._make_disk(spec, spec.image, d / "disk.qcow2")
        drive = d / "config.iso"
        await asyncio.to_thread(drive.unlink, missing_ok=True)
        if self._wants_drive(spec):
            await asyncio.to_thread(build_config_drive, spec, drive)
        await asyncio.to_thread(self._save_spec, spec)

    # --- domains ---

    def _lock(self, server_id: UUID) -> asyncio.Lock:
        return self._locks.setdefault(server_id, asyncio.Lock())

    async def _state(self, server_id: UUID) -> tuple[int, int] | None:
        """libvirt's ``(state, reason)`` of the guest; None if there is no such domain."""
        def state(c: libvirt.virConnect) -> tuple[int, int] | None:
            dom = lookup(c, server_id)
            if dom is None:
                return None
            s, r = dom.state()
            return s, r
        return await self._conn.call(state, "read the server's state")

    async def _known_state(self, server_id: UUID) -> tuple[int, int]:
        found = await self._state(server_id)
        if found is None:
            raise GuestNotFound("The server is not on this host.")
        return found

    async def _on_domain(self, server_id: UUID, doing: str, method: str, *args: object) -> object:
        def run(c: libvirt.virConnect) -> object:
            return getattr(c.lookupByUUIDString(str(server_id)), method)(*args)
        return await self._conn.call(run, doing)

    async def _xml(self, server_id: UUID, flags: int = 0) -> str:
        return str(await self._on_domain(server_id, "describe the server", "XMLDesc", flags))

    async def _define(self, xml: str) -> None:
        await self._conn.call(lambda c: c.defineXML(xml), "define the server")

    async def _start(self, server_id: UUID) -> None:
        """Boot the defined guest (a paused one is resumed): RUNNING on return."""
        state, _ = await self._known_state(server_id)
        if state == libvirt.VIR_DOMAIN_PAUSED:
            await self._on_domain(server_id, "resume the server", "resume")
        elif power_state(state, 0) is not PowerState.RUNNING:
            await self._on_domain(server_id, "start the server", "create")
        if not await self._conn.wait_for(server_id, lambda: self._is_running(server_id),
                                         timeout_s=START_TIMEOUT_S):
            raise DriverError("The server did not start.")

    async def _is_running(self, server_id: UUID) -> bool:
        state = await self._state(server_id)
        return state is not None and state[0] == libvirt.VIR_DOMAIN_RUNNING

    async def _is_off(self, server_id: UUID) -> bool:
        state = await self._state(server_id)
        return state is None or state[0] in (libvirt.VIR_DOMAIN_SHUTOFF,
                                             libvirt.VIR_DOMAIN_CRASHED)

    async def _hard_stop(self, server_id: UUID) -> None:
        """Cut the power if the guest runs (QEMU is gone on return)."""
        def stop(c: libvirt.virConnect) -> None:
            cut_power(c.lookupByUUIDString(str(server_id)))
        await self._conn.call(stop, "power off the server")

    async def _remove(self, server_id: UUID) -> None:
        """No domain, no process, no files of the guest."""
        def remove(c: libvirt.virConnect) -> None:
            dom = lookup(c, server_id)
            if dom is None:
                return
            cut_power(dom)
            try:
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                                  | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
        await self._conn.call(remove, "delete the server")
        await asyncio.to_thread(shutil.rmtree, self.guest_dir(server_id), ignore_errors=True)
        if embed.is_embed(self.uri):  # QEMU's own log of the guest, kept by libvirt
            qemu_log = self.home / "libvirt" / "log" / "qemu" / f"{domain.NAME_PREFIX}{server_id}.log"
            await asyncio.to_thread(qemu_log.unlink, missing_ok=True)

    # --- the interface ---

    async def spawn(self, spec: GuestSpec) -> None:
        async with self._lock(spec.server_id):
            await self._spawn(spec)

    async def _spawn(self, spec: GuestSpec) -> None:
        sid = spec.server_id
        state = await self._state(sid)
        if state is not None and power_state(*state) is PowerState.RUNNING:
            return
        try:
            if state is None:  # files are made before the domain is defined
                volumes = tuple(self._volume_disk(v) for v in spec.volumes if not v.boot)
                layout = self._layout(sid, spec, volumes=volumes)
                await self._check_files((*volumes, *(r for r in layout.disks
                                                     if isinstance(r, domain.VolumeDisk))))
                await asyncio.to_thread(shutil.rmtree, self.guest_dir(sid), ignore_errors=True)
                await self._make_files(spec)
                await self._define(domain.build(spec, layout))
            await self._start(sid)
        except BaseException:
            log.warning("libvirt.spawn_failed", server_id=str(sid))
            await asyncio.shield(self._remove(sid))
            raise
        log.info("libvirt.spawned", server_id=str(sid))

    async def destroy(self, server_id: UUID) -> None:
        async with self._lock(server_id):
            await self._remove(server_id)
        self._locks.pop(server_id, None)

    async def get_info(self, server_id: UUID) -> GuestInfo | None:
        def info(c: libvirt.virConnect) -> tuple[list[int], tuple[int, int], str] | None:
            dom = lookup(c, server_id)
            if dom is None:
                return None
            return dom.info(), tuple(dom.state()), dom.XMLDesc(0)  # type: ignore[return-value]
        found = await self._conn.call(info, "read the server's state")
        if found is None:
            return None
        (_, max_kib, _, vcpus, _), state, xml = found
        return GuestInfo(server_id=server_id, power_state=power_state(*state),
                         ram_mb=max_kib // 1024, vcpus=vcpus, rescued=domain.read_rescued(xml))

    async def list_instances(self) -> list[UUID]:
        def names(c: libvirt.virConnect) -> list[tuple[str, str]]:
            return [(d.name(), d.UUIDString()) for d in c.listAllDomains(0)]
        found = await self._conn.call(names, "list the servers")
        return [UUID(uuid) for name, uuid in found if name.startswith(domain.NAME_PREFIX)]

    async def console_output(self, server_id: UUID) -> str:
        await self._known_state(server_id)
        return await asyncio.to_thread(_tail, self.guest_dir(server_id) / "console.log")


def _tail(path: Path, limit: int = CONSOLE_MAX_BYTES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - limit))
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _cache(source: Path, cached: Path) -> None:
    """Put ``source`` at ``cached``: a hard link where the store shares this host's
    file system (instant, and the inode outlives the store's file), else a copy.
    Written under a temporary name, so a reader never sees half of it."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    part = cached.with_name(f"{cached.name}.{os.getpid()}.part")
    part.unlink(missing_ok=True)
    try:
        try:
            os.link(source, part)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            shutil.copyfile(source, part)
        os.replace(part, cached)
    finally:
        part.unlink(missing_ok=True)


def lookup(c: libvirt.virConnect, server_id: UUID) -> libvirt.virDomain | None:
    """The guest's domain (its uuid is the server's id); None if there is none
    (blocking: call it inside ``Connection.call``)."""
    try:
        return c.lookupByUUIDString(str(server_id))
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise


def cut_power(dom: libvirt.virDomain) -> None:
    """Destroy the domain's QEMU if it runs (blocking). A guest that stopped by
    itself meanwhile makes destroy fail ("domain is not running"): that is fine."""
    if not dom.isActive():
        return
    try:
        dom.destroy()
    except libvirt.libvirtError:
        if dom.isActive():
            raise
