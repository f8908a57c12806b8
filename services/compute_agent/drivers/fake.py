"""A real driver of a simulated host: its guests outlive the agent, time passes for real.

It keeps the host's capacity and refuses a guest that does not fit, takes
configurable time for each operation, and writes a console log of what it
simulates, so the rest of the system sees what a small hypervisor would show.

The host itself is a ``FakeHost`` (``fake_host``). With ``state_dir`` set it lives
on disk, as a real hypervisor's state does: an agent that restarts finds its guests
as they were (running, stopped, or caught mid-spawn, which spawning again
completes), and a guest an operator stopped, crashed or destroyed behind the
agent's back (``python -m services.compute_agent.drivers.fake_host``) shows so at
once. Without it the host lives in this process and dies with it (unit tests,
scale runs). The driver keeps nothing of a guest but its VNC server (``fake_vnc``,
per process: a restarted agent starts a new one when asked) and the boots it has
in flight; every method reads the host afresh, so each post-condition in ``base``
holds across a restart. What each guest was given is written as its disk
(``fake_disk``).
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import socket
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

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
from services.compute_agent.drivers.fake_console import (
    GOING_DOWN,
    POWER_DOWN,
    POWERING_ON,
    boot_lines,
    creation_lines,
    source_of,
    volume_line,
)
from services.compute_agent.drivers.fake_disk import (
    disk_usage,
    guest_relative_path,
    write_disk,
)
from services.compute_agent.drivers.fake_host import FakeHost, GuestRecord
from services.compute_agent.drivers.fake_vnc import FakeVncServer
from shared.contracts.common import ImageSpec
from shared.contracts.compute import BlockDevice
from shared.image_store import ImageFile, ImageStore
from shared.states import PowerState

log = structlog.get_logger(__name__)

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
    """Directory where the simulated host keeps its guests (``<state_dir>/<host>/``:
    each guest's state, console log and disk, see ``fake_host.store``), so they
    survive an agent restart and can be changed out of band; empty keeps them in
    the agent's memory only, lost when it stops. Costs one small file write per
    state change and one append per batch of console lines."""
    lacks: str = ""
    """Capabilities the simulated hypervisor does not have, comma-separated fields
    of ``base.Capabilities`` (``rescue,snapshot``): it refuses those operations
    (NotSupported) and reports them missing, as a lesser hypervisor would."""
    snapshot_delay_s: float = 2.0
    """How long copying a guest's root disk into an image takes (createImage);
    real snapshots take tens of seconds to minutes."""
    volume_delay_s: float = 0.2
    """How long hot-plugging a volume into a guest, or unplugging it, takes."""
    vnc_listen: str = "127.0.0.1"
    """Where the guests' VNC servers listen. The console proxy connects there, so
    where it runs elsewhere (another container or machine) this must be an address
    it reaches: ``0.0.0.0`` listens on all and advertises the agent's own address
    (what its hostname resolves to; in a container, the container's)."""
    vnc_address: str = ""
    """The address given to the console proxy, when not the one ``vnc_listen``
    implies (a NAT, a name)."""


class FakeDriver(HypervisorDriver):
    name = "fake"

    def __init__(self, settings: FakeSettings, *, host: str,
                 image_store: ImageStore | None = None) -> None:
        self._settings = settings
        full = Capabilities(rescue=True, snapshot=True, vnc_console=True, console_output=True,
                            volumes=True)
        lacks = {name.strip() for name in settings.lacks.split(",") if name.strip()}
        unknown = lacks - set(msgspec.structs.asdict(full))
        if unknown:
            raise SystemExit(f"NIMBUS_FAKE_LACKS names no capability: {', '.join(sorted(unknown))}")
        self.capabilities = msgspec.structs.replace(full, **{name: False for name in lacks})
        self._images = image_store
        self.fake_host = FakeHost(settings.state_dir or None, host)
        """The simulated host; tests act on it out of band as an operator would."""
        self._vnc: dict[UUID, FakeVncServer] = {}
        self._vnc_lock = asyncio.Lock()
        self._vnc_address = advertised_address(settings.vnc_listen, settings.vnc_address)
        self._boots: dict[UUID, asyncio.Future[None]] = {}
        """Guests this process is booting (spawn), done when the boot ends either way."""

    @classmethod
    def from_settings(cls, settings: FakeSettings, context: DriverContext) -> FakeDriver:
        return cls(settings, host=context.host, image_store=context.image_store)

    async def host_resources(self) -> HostResources:
        s = self._settings
        return HostResources(ram_mb=s.ram_mb, disk_gb=s.disk_gb, vcpus=s.vcpus)

    def guest_dir(self, server_id: UUID) -> Path | None:
        """Where the guest's disk (what it was given) is kept; None without ``state_dir``."""
        return self.fake_host.disk_dir(server_id)

    async def spawn(self, spec: GuestSpec) -> None:
        sid = spec.server_id
        booting = self._boots.get(sid)
        if booting is not None:  # a spawn of this guest is under way here: share its end
            await asyncio.shield(booting)
            if self.fake_host.guest(sid) is None:
                raise DriverError(f"guest {sid} was destroyed while spawning")
            return
        record = self.fake_host.guest(sid)
        if record is not None and record.power_state is not PowerState.NOSTATE:
            return  # already there
        if record is None:
            record = self.fake_host.define(spec, lines=creation_lines(spec),
                                           ram_limit_mb=self._settings.ram_mb)
            if record is None:
                raise DriverError(f"guest {sid} was created by someone else meanwhile")
        else:
            # Defined but never booted: the agent that spawned it died mid-boot.
            self.fake_host.log(sid, "nimbus-fake: guest found half-created: booting it again")
        self._boots[sid] = booting = asyncio.get_running_loop().create_future()
        try:
            await self._boot(record, "spawning")
        except BaseException:
            # A failed spawn leaves nothing: neither the guest nor its disk.
            self.fake_host.undefine(sid, record.incarnation)
            await self._remove_disk(sid)
            raise
        finally:
            del self._boots[sid]
            booting.set_result(None)

    async def _boot(self, record: GuestRecord, doing: str) -> None:
        """Prepare the defined guest's disk, wait for the boot, and log it: RUNNING."""
        spec = record.spec
        target = self.fake_host.disk_dir(spec.server_id)
        if target is not None:
            try:
                await asyncio.to_thread(write_disk, target, spec)
            except OSError as exc:
                # The OS's words name the host's paths: they go to the log, not the fault.
                log.error("fake.disk_failed", server_id=str(spec.server_id), error=str(exc))
                raise DriverError(f"the host could not prepare the disks of {spec.server_id} "
                                  f"({exc.strerror or type(exc).__name__})") from None
        await asyncio.sleep(self._settings.spawn_delay_s)
        self._set(record, doing, power_state=PowerState.RUNNING, lines=boot_lines(spec))

    async def destroy(self, server_id: UUID) -> None:
        vnc = self._vnc.pop(server_id, None)
        if vnc is not None:
            await vnc.close()
        gone = self.fake_host.undefine(server_id)
        # The disk goes even when the host had no such guest: a destroy cut short
        # (kill -9) between the two leaves a disk behind.
        await self._remove_disk(server_id)
        if gone is not None:
            await asyncio.sleep(self._settings.destroy_delay_s)

    async def _remove_disk(self, server_id: UUID) -> None:
        target = self.fake_host.disk_dir(server_id)
        if target is not None:
            await asyncio.to_thread(functools.partial(shutil.rmtree, target, ignore_errors=True))

    async def get_info(self, server_id: UUID) -> GuestInfo | None:
        record = self.fake_host.guest(server_id)
        if record is None:
            return None
        flavor = record.spec.flavor
        return GuestInfo(server_id=server_id, power_state=record.power_state,
                         ram_mb=flavor.ram_mb, vcpus=flavor.vcpus, rescued=record.rescued)

    async def list_instances(self) -> list[UUID]:
        return self.fake_host.ids()

    async def console_output(self, server_id: UUID) -> str:
        console = self.fake_host.console(server_id)
        if console is None:
            raise GuestNotFound(f"no guest {server_id} on this host")
        return console

    # --- reboot, power off/on, rescue (issue 4) ---
    # Each writes what a guest's serial console would show, so the console log
    # tells the story: shutdown lines, then the boot lines again. Each reads the
    # guest when it starts and changes it only if it is still the same guest.

    def _known(self, server_id: UUID) -> GuestRecord:
        record = self.fake_host.guest(server_id)
        if record is None:
            raise GuestNotFound(f"no guest {server_id} on this host")
        return record

    def _set(self, record: GuestRecord, doing: str, *, power_state: PowerState | None = None,
             rescued: bool | None = None, spec: GuestSpec | None = None,
             lines: Sequence[str] = ()) -> GuestRecord:
        """Change the guest ``record`` was read from; DriverError if it went meanwhile."""
        new = self.fake_host.update(record.server_id, record.incarnation, power_state=power_state,
                                    rescued=rescued, spec=spec, lines=lines)
        if new is None:
            raise DriverError(f"guest {record.server_id} was destroyed while {doing}")
        return new

    async def reboot(self, server_id: UUID, *, hard: bool) -> None:
        record = self._known(server_id)
        delay = self._settings.reboot_delay_s
        if not hard and record.power_state is not PowerState.RUNNING:
            # A guest that is not running cannot shut itself down: as libvirt's
            # driver does, a soft reboot falls back to a hard one.
            self.fake_host.log(server_id,
                               "nimbus-fake: guest not running, soft reboot falls back to hard")
            hard = True
        if hard:
            self._set(record, "rebooting", power_state=PowerState.SHUTDOWN,
                      lines=["nimbus-fake: hard reboot: resetting the guest"])
            await asyncio.sleep(delay)
        else:
            self.fake_host.log(server_id,
                               "nimbus-fake: soft reboot: ACPI reboot request sent to the guest",
                               "The system is going down for reboot NOW!",
                               " * Stopping all remaining processes")
            await asyncio.sleep(delay / 2)
            self._set(record, "rebooting", power_state=PowerState.SHUTDOWN,
                      lines=["reboot: Restarting system"])
            await asyncio.sleep(delay / 2)
        self._set(record, "rebooting", power_state=PowerState.RUNNING,
                  lines=boot_lines(record.spec))

    async def power_off(self, server_id: UUID, *, timeout_s: float) -> None:
        # The simulated guest always answers ACPI within its delay; ``timeout_s``
        # (0: cut the power) only chooses between the two ways down.
        record = self._known(server_id)
        if record.power_state is PowerState.SHUTDOWN:
            return
        if record.power_state is PowerState.CRASHED:  # nothing left in it to answer ACPI
            self._set(record, "powering off", power_state=PowerState.SHUTDOWN,
                      lines=["nimbus-fake: the guest had crashed: powered off"])
            return
        if timeout_s <= 0:
            self._set(record, "powering off", power_state=PowerState.SHUTDOWN,
                      lines=["nimbus-fake: power cut: the guest was destroyed"])
            return
        self.fake_host.log(server_id, "nimbus-fake: ACPI power button pressed", GOING_DOWN)
        await asyncio.sleep(min(self._settings.power_off_delay_s, timeout_s))
        self._set(record, "powering off", power_state=PowerState.SHUTDOWN, lines=[POWER_DOWN])

    async def power_on(self, server_id: UUID) -> None:
        record = self._known(server_id)
        if record.power_state is PowerState.RUNNING:
            return
        self._set(record, "powering on", power_state=PowerState.SHUTDOWN, lines=[POWERING_ON])
        await asyncio.sleep(self._settings.power_on_delay_s)
        self._set(record, "powering on", power_state=PowerState.RUNNING,
                  lines=boot_lines(record.spec))

    async def rescue(self, server_id: UUID, *, admin_pass: str, image: ImageSpec | None) -> None:
        if not self.capabilities.rescue:
            await super().rescue(server_id, admin_pass=admin_pass, image=image)
        # The password is set inside the rescue system; it never reaches the console
        # (nor the host's record).
        record = self._known(server_id)
        if record.rescued:
            return
        rescue_image = image.name if image is not None else "the default rescue image"
        self._set(record, "rescuing", power_state=PowerState.SHUTDOWN, lines=[
            "nimbus-fake: rescue: stopping the guest",
            f"nimbus-fake: rescue: booting {rescue_image}, the guest's own disk "
            "attached as the second disk"])
        await asyncio.sleep(self._settings.rescue_delay_s)
        self._set(record, "rescuing", rescued=True, power_state=PowerState.RUNNING,
                  lines=boot_lines(record.spec))

    async def unrescue(self, server_id: UUID) -> None:
        if not self.capabilities.rescue:
            await super().unrescue(server_id)
        record = self._known(server_id)
        if not record.rescued:
            return
        self._set(record, "unrescuing", power_state=PowerState.SHUTDOWN, lines=[
            "nimbus-fake: unrescue: stopping the rescue system",
            "nimbus-fake: unrescue: booting from the guest's own disk"])
        await asyncio.sleep(self._settings.rescue_delay_s)
        self._set(record, "unrescuing", rescued=False, power_state=PowerState.RUNNING,
                  lines=boot_lines(record.spec))

    # --- rebuild, snapshot, VNC console (issue 4) ---

    async def rebuild(self, spec: GuestSpec) -> None:
        record = self.fake_host.guest(spec.server_id)
        if record is None:
            # A guest the host does not have (destroyed out of band, or an
            # in-memory host that restarted): rebuilding creates it afresh.
            await self.spawn(spec)
            return
        old = record.spec
        spec = _rebuilt_spec(old, spec)
        self._set(record, "rebuilding", power_state=PowerState.SHUTDOWN, lines=[
            f"nimbus-fake: rebuilding guest {old.name} from {source_of(spec)} "
            f"(was {source_of(old)})", "nimbus-fake: guest powered off, root disk re-imaged"])
        await asyncio.sleep(self._settings.destroy_delay_s)
        record = self._set(record, "rebuilding", spec=spec, power_state=PowerState.NOSTATE,
                           lines=creation_lines(spec))
        await self._boot(record, "rebuilding")  # writes the disk (files, config drive) anew

    async def snapshot(self, server_id: UUID, image_id: UUID) -> ImageFile:
        if not self.capabilities.snapshot:
            await super().snapshot(server_id, image_id)
        record = self._known(server_id)
        spec = record.spec
        self.fake_host.log(server_id, f"nimbus-fake: snapshot of the root disk started "
                                      f"({source_of(spec)}, {spec.flavor.disk_gb} GB disk)")
        await asyncio.sleep(self._settings.snapshot_delay_s)
        now = self.fake_host.guest(server_id)
        console = self.fake_host.console(server_id)
        if now is None or now.incarnation != record.incarnation or console is None:
            raise DriverError(f"guest {server_id} was destroyed while being snapshotted")
        size = disk_usage(now.spec, len(console))
        if self._images is None:
            raise DriverError("this host has no image store to write the snapshot to")
        location = ImageStore.location_for(image_id, "raw")
        await asyncio.to_thread(_write_snapshot, self._images, location, now.spec, size)
        self.fake_host.log(server_id, f"nimbus-fake: snapshot of the root disk done ({size} bytes)")
        return self._images.file(location, "raw")

    # --- volumes (issue 11): the guest's spec lists what it has attached ---

    async def attach_volume(self, server_id: UUID, device: BlockDevice) -> None:
        if not self.capabilities.volumes:
            await super().attach_volume(server_id, device)
        record = self._known(server_id)
        if any(v.volume_id == device.volume_id for v in record.spec.volumes):
            return
        if any(v.device == device.device for v in record.spec.volumes):
            raise DriverError(f"the guest already has a disk at {device.device}")
        await asyncio.sleep(self._settings.volume_delay_s)
        spec = msgspec.structs.replace(record.spec, volumes=(*record.spec.volumes, device))
        self._set(record, "attaching a volume", spec=spec, lines=[volume_line(device, "attached")])

    async def detach_volume(self, server_id: UUID, volume_id: UUID) -> None:
        if not self.capabilities.volumes:
            await super().detach_volume(server_id, volume_id)
        record = self._known(server_id)
        gone = [v for v in record.spec.volumes if v.volume_id == volume_id]
        if not gone:
            return
        if gone[0].boot:
            raise DriverError(f"volume {volume_id} is the guest's root disk")
        await asyncio.sleep(self._settings.volume_delay_s)
        spec = msgspec.structs.replace(
            record.spec, volumes=tuple(v for v in record.spec.volumes if v.volume_id != volume_id))
        self._set(record, "detaching a volume", spec=spec, lines=[volume_line(gone[0], "detached")])

    async def vnc_endpoint(self, server_id: UUID) -> tuple[str, int] | None:
        if not self.capabilities.vnc_console:
            return None
        record = self.fake_host.guest(server_id)
        if record is None or record.power_state is not PowerState.RUNNING:
            if record is None and (vnc := self._vnc.pop(server_id, None)) is not None:
                await vnc.close()  # the guest went behind the driver's back
            return None
        async with self._vnc_lock:  # two requests at once get one server
            vnc = self._vnc.get(server_id)
            if vnc is None:
                vnc = FakeVncServer(record.spec.name)
                await vnc.start(self._settings.vnc_listen)
                self._vnc[server_id] = vnc
                self.fake_host.log(server_id, f"nimbus-fake: VNC server listening on "
                                              f"{self._settings.vnc_listen}:{vnc.port}")
        assert vnc.port is not None
        return (self._vnc_address, vnc.port)


@functools.cache  # once per process, not once per host of an agent simulating hundreds
def advertised_address(listen: str, address: str = "") -> str:
    """The address a VNC server listening on ``listen`` is reached at: ``address``
    when given, this machine's own for a wildcard listen, else ``listen`` itself."""
    if address:
        return address
    if listen in ("", "0.0.0.0", "::"):
        return socket.gethostbyname(socket.gethostname())
    return listen


def _write_snapshot(store: ImageStore, location: str, spec: GuestSpec, size: int) -> None:
    """The simulated disk as a raw file of ``size`` bytes: a header naming what it
    was made from, then holes (sparse, so a large snapshot costs no disk)."""
    header = msgspec.json.encode({"nimbus_fake_disk": 1, "server": str(spec.server_id),
                                  "image": str(spec.image.id) if spec.image else None,
                                  "name": spec.name})
    with store.writing(location) as part, part.open("wb") as fh:
        fh.write(header)
        fh.truncate(max(size, len(header)))


def _rebuilt_spec(old: GuestSpec, new: GuestSpec) -> GuestSpec:
    """The guest after a rebuild: ``new`` (image, name, password, metadata, files),
    keeping the user data and keys the guest was created with, which the agent
    does not keep and a rebuild does not change."""
    return msgspec.structs.replace(new, config=new.config.rebuilt_from(old.config))
