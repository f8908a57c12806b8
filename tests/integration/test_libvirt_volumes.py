"""Volumes on real guests: the libvirt driver hot-plugs a volume's qcow2 file into a
running QEMU guest (TCG) and out again, attaches one to a stopped guest, and boots
a guest from one.

What the guest sees is read from its own serial console: Nimbus Tiny Linux prints
``nimbus-disk: vdb added size=... serial=...`` for each disk plugged in, writes a
marker on a blank one and shows the marker it finds on another
(``deploy/guest_image/init.sh``). What libvirt holds is read as an operator would
(``virsh dumpxml``: a connection of the test's own); the volume files are made with
``qemu-img`` in a volume store of the test's own, as the volume service makes them.
Every wait is for a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import libvirt
import msgspec
import pytest
from lxml import etree

from services.compute_agent.drivers.base import DriverError, GuestConfig
from services.compute_agent.drivers.libvirt.driver import LibvirtDriver
from shared.contracts.compute import BlockDevice
from shared.contracts.volume import VolumeConnection
from shared.states import PowerState
from tests.integration.libvirt_guests import (
    console_end,
    console_has,
    context_for,
    guest_spec,
    power,
    settings_for,
)

GIB = 1024 ** 3


@pytest.fixture
async def make_driver(libvirt_home: Path) -> AsyncIterator[Callable[..., LibvirtDriver]]:
    """Drivers on the session's root (several may be open at once), closed at the end."""
    made: list[LibvirtDriver] = []

    def make(**settings: object) -> LibvirtDriver:
        d = LibvirtDriver.from_settings(settings_for(libvirt_home, **settings),
                                        context_for(libvirt_home))
        made.append(d)
        return d
    yield make
    for d in made:
        await d.cleanup()


@pytest.fixture
async def driver(make_driver: Callable[..., LibvirtDriver]) -> LibvirtDriver:
    d = make_driver()
    await d.init_host()
    return d


def _qemu_img(*args: str) -> str:
    return subprocess.run(["qemu-img", *args], check=True, capture_output=True,
                          text=True).stdout


async def _volume(home: Path, size: str = "1G", *, source: Path | None = None
                  ) -> tuple[uuid.UUID, Path]:
    """A volume's file in the volume store, blank or a copy of ``source``."""
    volume_id = uuid.uuid4()
    path = home / "volumes" / f"volume-{volume_id}.qcow2"
    if source is None:
        await asyncio.to_thread(_qemu_img, "create", "-q", "-f", "qcow2", str(path), size)
    else:
        await asyncio.to_thread(_qemu_img, "convert", "-O", "qcow2", str(source), str(path))
    return volume_id, path


def _device(volume_id: uuid.UUID, path: Path, device: str, *, boot: bool = False
            ) -> BlockDevice:
    return BlockDevice(volume_id=volume_id, device=device, boot=boot,
                       connection=VolumeConnection(name=path.name))


async def _volumes_in(d: LibvirtDriver, server_id: uuid.UUID) -> tuple[set[str], set[str]]:
    """The volume aliases of the guest's live and persistent definitions, as an
    operator's own connection (virsh) shows them."""
    def read() -> tuple[set[str], set[str]]:
        conn = libvirt.open(d.uri)
        try:
            dom = conn.lookupByUUIDString(str(server_id))
            live = dom.XMLDesc(0) if dom.isActive() else ""
            return _aliases(live), _aliases(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        finally:
            conn.close()
    return await asyncio.to_thread(read)


def _aliases(xml: str) -> set[str]:
    if not xml:
        return set()
    return {str(a) for a in etree.fromstring(xml.encode()).xpath(
        "devices/disk/alias[starts-with(@name, 'ua-volume-')]/@name")}


def _alias(volume_id: uuid.UUID) -> str:
    return f"ua-volume-{volume_id}"


async def _disk_line(d: LibvirtDriver, sid: uuid.UUID, pattern: str, *, since: int = 0) -> None:
    await console_has(d, sid, pattern, since=since, prefix="nimbus-disk")


async def _pause(d: LibvirtDriver, sid: uuid.UUID, pause: bool) -> None:
    """Pause or resume the guest behind the driver's back (``virsh suspend``)."""
    def run() -> None:
        conn = libvirt.open(d.uri)
        try:
            dom = conn.lookupByUUIDString(str(sid))
            dom.suspend() if pause else dom.resume()
        finally:
            conn.close()
    await asyncio.to_thread(run)


async def test_a_volume_is_hot_plugged_written_released_and_found_by_another_guest(
        driver: LibvirtDriver, make_driver: Callable[..., LibvirtDriver], libvirt_home: Path,
        capsys: pytest.CaptureFixture[str]):
    timings: dict[str, float] = {}
    a, b = guest_spec(hostname="vol-a"), guest_spec(hostname="vol-b")
    await asyncio.gather(driver.spawn(a), driver.spawn(b))
    await asyncio.gather(console_has(driver, a.server_id, "ready"),
                         console_has(driver, b.server_id, "ready"))
    v1, v1_path = await _volume(libvirt_home)
    disk1 = _device(v1, v1_path, "/dev/vdb")

    # Hot-plugged into A: its guest sees a new disk, blank, and marks it.
    started = time.monotonic()
    await driver.attach_volume(a.server_id, disk1)
    await _disk_line(driver, a.server_id, f"vdb added size={GIB} serial={str(v1)[:20]}")
    await _disk_line(driver, a.server_id, "vdb wrote=written-by-vol-a")
    timings["attach (to the guest's mark)"] = time.monotonic() - started
    assert await _volumes_in(driver, a.server_id) == ({_alias(v1)}, {_alias(v1)})
    await driver.attach_volume(a.server_id, disk1)  # redelivered: no-op
    assert await _volumes_in(driver, a.server_id) == ({_alias(v1)}, {_alias(v1)})

    # Detached: the guest releases it, then it is gone from both definitions.
    mark = await console_end(driver, a.server_id)
    started = time.monotonic()
    await driver.detach_volume(a.server_id, v1)
    timings["detach (guest released)"] = time.monotonic() - started
    assert await _volumes_in(driver, a.server_id) == (set(), set())
    await _disk_line(driver, a.server_id, "vdb removed", since=mark)
    await driver.detach_volume(a.server_id, v1)  # again: no-op

    # The same file on B: the data A wrote is there.
    await driver.attach_volume(b.server_id, disk1)
    await _disk_line(driver, b.server_id, "vdb data=written-by-vol-a")

    # A guest that does not answer (paused behind the driver's back) keeps the disk.
    v3, v3_path = await _volume(libvirt_home, "64M")
    await driver.attach_volume(a.server_id, _device(v3, v3_path, "/dev/vdb"))
    await _disk_line(driver, a.server_id, "vdb wrote=written-by-vol-a", since=mark)
    impatient = make_driver(detach_timeout_s=1.0, detach_attempts=2)
    await impatient.init_host()
    await _pause(driver, a.server_id, True)
    started = time.monotonic()
    with pytest.raises(DriverError, match="^The guest did not release the volume; "
                                          "it is still attached.$"):
        await impatient.detach_volume(a.server_id, v3)
    timings["detach refused (2 attempts of 1 s)"] = time.monotonic() - started
    assert await _volumes_in(driver, a.server_id) == ({_alias(v3)}, {_alias(v3)})
    # Resumed, the guest answers the request it was sent; a detach again completes.
    mark = await console_end(driver, a.server_id)
    await _pause(driver, a.server_id, False)
    await _disk_line(driver, a.server_id, "vdb removed", since=mark)
    await driver.detach_volume(a.server_id, v3)
    assert await _volumes_in(driver, a.server_id) == (set(), set())

    # Refusals change nothing: a device B already has, a volume with no file.
    v4, v4_path = await _volume(libvirt_home, "64M")
    with pytest.raises(DriverError, match=r"^The server already has a disk at /dev/vdb\.$"):
        await driver.attach_volume(b.server_id, _device(v4, v4_path, "/dev/vdb"))
    gone = _device(uuid.uuid4(), v4_path.with_name("gone.qcow2"), "/dev/vdd")
    with pytest.raises(DriverError, match="has no data in the volume store"):
        await driver.attach_volume(b.server_id, gone)

    # Stopped: attached to the definition only, there at the next boot, with the
    # hot-plugged one (the persistent definition is what starts).
    await driver.power_off(b.server_id, timeout_s=60)
    v2, v2_path = await _volume(libvirt_home, "64M")
    await driver.attach_volume(b.server_id, _device(v2, v2_path, "/dev/vdc"))
    await driver.attach_volume(b.server_id, _device(v2, v2_path, "/dev/vdc"))  # no-op
    assert await _volumes_in(driver, b.server_id) == (set(), {_alias(v1), _alias(v2)})
    mark = await console_end(driver, b.server_id)
    await driver.power_on(b.server_id)
    await _disk_line(driver, b.server_id, "vdb data=written-by-vol-a", since=mark)
    await _disk_line(driver, b.server_id, f"vdc added size={64 << 20} serial={str(v2)[:20]}",
                     since=mark)
    await _disk_line(driver, b.server_id, "vdc wrote=written-by-vol-b", since=mark)

    # Detached while stopped: from the definition, nothing to ask the guest.
    await driver.power_off(b.server_id, timeout_s=60)
    await driver.detach_volume(b.server_id, v2)
    await driver.detach_volume(b.server_id, v2)  # no-op
    assert await _volumes_in(driver, b.server_id) == (set(), {_alias(v1)})

    # Destroying the guests leaves every volume's file, whole.
    await asyncio.gather(driver.destroy(a.server_id), driver.destroy(b.server_id))
    for path in (v1_path, v2_path, v3_path, v4_path):
        described = json.loads(await asyncio.to_thread(_qemu_img, "info", "--output=json",
                                                       str(path)))
        assert described["format"] == "qcow2"
    with capsys.disabled():
        print("\nlibvirt volume timings (s): "
              + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))


async def test_a_guest_boots_from_a_volume_that_outlives_it(
        driver: LibvirtDriver, libvirt_home: Path, tiny_image: Path):
    boot_id, boot_path = await _volume(libvirt_home, source=tiny_image)
    data_id, data_path = await _volume(libvirt_home, "64M")
    spec = msgspec.structs.replace(
        guest_spec(hostname="from-volume"), image=None,
        volumes=(_device(boot_id, boot_path, "/dev/vda", boot=True),
                 _device(data_id, data_path, "/dev/vdb")))
    sid = spec.server_id
    await driver.spawn(spec)
    await console_has(driver, sid, "ready")
    await console_has(driver, sid, f"disk boot 1, first booted by {sid}")
    await _disk_line(driver, sid, f"vdb added size={64 << 20} serial={str(data_id)[:20]}")
    await _disk_line(driver, sid, "vdb wrote=written-by-from-volume")
    assert not (driver.guest_dir(sid) / "disk.qcow2").exists()  # the volume itself, no copy
    assert await _volumes_in(driver, sid) == ({_alias(boot_id), _alias(data_id)},) * 2

    # No image disk to copy or make again, and the root cannot be taken away.
    with pytest.raises(DriverError, match="booted from a volume has no image disk"):
        await driver.snapshot(sid, uuid.uuid4())
    with pytest.raises(DriverError, match="booted from a volume cannot be rebuilt"):
        await driver.rebuild(msgspec.structs.replace(guest_spec(sid), config=GuestConfig(
            hostname="x")))
    with pytest.raises(DriverError, match="boot disk; it cannot be detached"):
        await driver.detach_volume(sid, boot_id)
    assert await power(driver, sid) is PowerState.RUNNING

    # Rescue: it has no image of its own, so it needs one given; the rescue disk
    # boots and finds the volume as the server's disk.
    with pytest.raises(DriverError, match="a rescue image must be given"):
        await driver.rescue(sid, admin_pass="pw", image=None)
    assert await power(driver, sid) is PowerState.RUNNING
    mark = await console_end(driver, sid)
    await driver.rescue(sid, admin_pass="pw", image=guest_spec().image)
    await console_has(driver, sid, rf"rescue: found the server's disk on vdb \(boot 1, "
                                   rf"first booted by {sid}\)", since=mark)
    with pytest.raises(DriverError, match="rescue mode"):
        await driver.attach_volume(sid, _device(data_id, data_path, "/dev/vdc"))
    assert await _volumes_in(driver, sid) == ({_alias(boot_id)}, {_alias(boot_id)})
    mark = await console_end(driver, sid)
    await driver.unrescue(sid)  # its own definition again, the data volume with it
    assert await _volumes_in(driver, sid) == ({_alias(boot_id), _alias(data_id)},) * 2
    await console_has(driver, sid, f"disk boot 2, first booted by {sid}", since=mark)

    # Destroyed: both volumes stay, the boot counter the guest kept inside.
    await driver.destroy(sid)
    assert boot_path.is_file() and data_path.is_file()
    raw = libvirt_home / "boot.raw"
    await asyncio.to_thread(_qemu_img, "convert", "-O", "raw", str(boot_path), str(raw))
    boots = await asyncio.to_thread(subprocess.run, ["mtype", "-i", str(raw), "::/nimbus/boots"],
                                    check=True, capture_output=True, text=True,
                                    env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"})
    raw.unlink()
    assert boots.stdout.strip() == "2"
    assert not driver.guest_dir(sid).exists()
