"""Volumes in the libvirt driver against libvirt's own ``test:///default`` driver.

That driver keeps definitions and states but cannot attach or detach a device (its
refusal shows how libvirt's errors reach the user); hot-plug itself is tested
against real QEMU (``tests/integration/test_libvirt_volumes.py``). What is tested
here: what the driver decides before it asks libvirt, a guest booted from a
volume, and that volume files are never the guest's to remove.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import libvirt
import msgspec
import pytest

from services.compute_agent.agent import make_driver
from services.compute_agent.drivers.base import (
    DriverContext,
    DriverError,
    GuestConfig,
    GuestNotFound,
    GuestSpec,
)
from services.compute_agent.drivers.libvirt import domain
from services.compute_agent.drivers.libvirt.driver import LibvirtDriver
from services.compute_agent.drivers.libvirt.settings import LibvirtSettings
from services.compute_agent.drivers.libvirt.volumes import target_for
from services.compute_agent.settings import Settings
from shared.config import load
from shared.contracts.common import FlavorSpec, ImageSpec
from shared.contracts.compute import BlockDevice
from shared.contracts.volume import VolumeConnection
from shared.image_store import ImageStore
from shared.volume_store import VolumeStore

FLAVOR = FlavorSpec(id="1", name="small", ram_mb=256, disk_gb=1, vcpus=1)


def _driver(tmp_path: Path, host: str, *, volumes: bool = True) -> LibvirtDriver:
    for store in ("images", "volumes"):
        (tmp_path / store).mkdir(parents=True, exist_ok=True)
    (tmp_path / "images" / "tiny.qcow2").write_bytes(b"not really an image")
    ctx = DriverContext(host=host, image_store=ImageStore(str(tmp_path / "images")),
                        volume_store=VolumeStore(str(tmp_path / "volumes")) if volumes else None)
    # A refused detach is waited out once (the disk might be leaving): not for long here.
    return LibvirtDriver.from_settings(LibvirtSettings(
        uri="test:///default", state_dir=str(tmp_path / "state"), fake_disks=True,
        detach_timeout_s=0.3), ctx)


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[LibvirtDriver]:
    d = _driver(tmp_path, "h1")
    await d.init_host()
    yield d
    await d.cleanup()


def _volume(d: LibvirtDriver, device: str = "/dev/vdb", *, boot: bool = False,
            present: bool = True) -> BlockDevice:
    volume_id = uuid.uuid4()
    name = f"volume-{volume_id}.qcow2"
    if present:
        assert d._volumes is not None
        Path(d._volumes.root, name).write_bytes(b"the volume service's bits")
    return BlockDevice(volume_id=volume_id, device=device, boot=boot,
                       connection=VolumeConnection(name=name))


def _spec(*volumes: BlockDevice, image: bool = True) -> GuestSpec:
    return GuestSpec(server_id=uuid.uuid4(), name="vm", flavor=FLAVOR,
                     image=ImageSpec(id=uuid.uuid4(), name="tiny", location="tiny.qcow2",
                                     disk_format="qcow2") if image else None,
                     volumes=volumes, config=GuestConfig(hostname="vm"))


async def _definition(d: LibvirtDriver, server_id: uuid.UUID) -> str:
    return await d._conn.call(lambda c: c.lookupByUUIDString(str(server_id)).XMLDesc(
        libvirt.VIR_DOMAIN_XML_INACTIVE), "describe")


def test_the_driver_says_it_does_volumes_and_the_agent_gives_it_the_volume_store(tmp_path):
    assert LibvirtDriver.capabilities.volumes
    settings = load(Settings, environ={"NIMBUS_COMPUTE_DRIVER": "libvirt",
                                       "NIMBUS_LIBVIRT_URI": "test:///default",
                                       "NIMBUS_VOLUMES_DIR": str(tmp_path / "volumes")})
    made = make_driver(settings)
    assert isinstance(made, LibvirtDriver)
    assert made._volumes == VolumeStore(str(tmp_path / "volumes"))


def test_device_names_become_virtio_targets():
    assert [target_for(d) for d in ("/dev/vdb", "/dev/sdc", "xvdd", "/dev/hdz")] == [
        "vdb", "vdc", "vdd", "vdz"]
    for bad in ("/dev/vda", "/dev/vdaa", "/dev/nvme0n1", "vdb1", "/etc/passwd"):
        with pytest.raises(DriverError, match="use a device from /dev/vdb to /dev/vdz"):
            target_for(bad)


async def test_a_guest_boots_from_its_volume_file_and_destroy_leaves_the_files(driver):
    boot, data = _volume(driver, "/dev/vda", boot=True), _volume(driver, "/dev/vdc")
    spec = _spec(boot, data, image=False)
    await driver.spawn(spec)
    xml = await _definition(driver, spec.server_id)
    assert domain.read_boot_volume(xml) == boot.volume_id
    assert [(v.volume_id, v.target, v.path.name) for v in domain.read_volumes(xml)] == [
        (boot.volume_id, "vda", boot.connection.name),
        (data.volume_id, "vdc", data.connection.name)]
    assert not (driver.guest_dir(spec.server_id) / "disk.qcow2").exists()
    assert driver._volumes is not None
    files = sorted(Path(driver._volumes.root).iterdir())
    await driver.destroy(spec.server_id)
    assert sorted(Path(driver._volumes.root).iterdir()) == files
    assert all(f.read_bytes() == b"the volume service's bits" for f in files)


async def test_spawn_refuses_a_volume_with_no_file_and_leaves_nothing(driver):
    for spec in (_spec(_volume(driver, "/dev/vda", boot=True, present=False), image=False),
                 _spec(_volume(driver, present=False))):
        with pytest.raises(DriverError, match="has no data in the volume store"):
            await driver.spawn(spec)
        assert await driver.get_info(spec.server_id) is None
        assert not driver.guest_dir(spec.server_id).exists()
    with pytest.raises(DriverError, match="neither an image nor a volume"):
        await driver.spawn(_spec(image=False))


async def test_what_a_volume_booted_guest_cannot_do_is_refused_before_anything_changes(driver):
    boot = _volume(driver, "/dev/vda", boot=True)
    spec = _spec(boot, image=False)
    await driver.spawn(spec)
    before = await _definition(driver, spec.server_id)
    with pytest.raises(DriverError, match="cannot be rebuilt"):
        await driver.rebuild(msgspec.structs.replace(spec, image=_spec().image, volumes=()))
    with pytest.raises(DriverError, match="snapshot its volume instead"):
        await driver.snapshot(spec.server_id, uuid.uuid4())
    with pytest.raises(DriverError, match="a rescue image must be given"):
        await driver.rescue(spec.server_id, admin_pass="x", image=None)
    with pytest.raises(DriverError, match="boot disk; it cannot be detached"):
        await driver.detach_volume(spec.server_id, boot.volume_id)
    assert await _definition(driver, spec.server_id) == before
    assert (await driver.get_info(spec.server_id)).rescued is False  # type: ignore[union-attr]

    # With a rescue image: the rescue disk boots, the volume is the second disk.
    await driver.rescue(spec.server_id, admin_pass="x", image=_spec().image)
    rescued = await _definition(driver, spec.server_id)
    assert [v.target for v in domain.read_volumes(rescued)] == ["vdb"]
    with pytest.raises(DriverError, match="rescue mode"):
        await driver.attach_volume(spec.server_id, _volume(driver))
    await driver.unrescue(spec.server_id)
    assert await _definition(driver, spec.server_id) == before


async def test_attach_and_detach_decide_before_asking_libvirt(driver, tmp_path):
    with pytest.raises(GuestNotFound):
        await driver.attach_volume(uuid.uuid4(), _volume(driver))
    with pytest.raises(GuestNotFound):
        await driver.detach_volume(uuid.uuid4(), uuid.uuid4())
    spec = _spec(_volume(driver, "/dev/vdc"))
    await driver.spawn(spec)
    with pytest.raises(DriverError, match="has no data in the volume store"):
        await driver.attach_volume(spec.server_id, _volume(driver, present=False))
    with pytest.raises(DriverError, match=r"^The server already has a disk at /dev/vdc\.$"):
        await driver.attach_volume(spec.server_id, _volume(driver, "/dev/vdc"))
    await driver.attach_volume(spec.server_id, spec.volumes[0])  # attached: nothing to ask
    await driver.detach_volume(spec.server_id, uuid.uuid4())  # not attached: nothing to ask
    # libvirt's refusal (this driver cannot hot-plug) in the user's words, its own logged.
    with pytest.raises(DriverError) as caught:
        await driver.attach_volume(spec.server_id, _volume(driver, "/dev/vdd"))
    assert str(caught.value) == "The hypervisor could not attach the volume."
    with pytest.raises(DriverError) as caught:
        await driver.detach_volume(spec.server_id, spec.volumes[0].volume_id)
    assert str(caught.value) == "The hypervisor could not detach the volume."
    assert len(domain.read_volumes(await _definition(driver, spec.server_id))) == 1

    bare = _driver(tmp_path / "bare", "h2", volumes=False)
    await bare.init_host()
    try:
        with pytest.raises(DriverError, match="no volume store"):
            await bare.attach_volume(spec.server_id, spec.volumes[0])
    finally:
        await bare.cleanup()


async def test_a_volume_outside_the_store_or_in_an_odd_format_is_refused(driver):
    spec = _spec()
    await driver.spawn(spec)
    for connection in (VolumeConnection(name="../images/tiny.qcow2"),
                       VolumeConnection(name="x.qcow2", driver_volume_type="rbd"),
                       VolumeConnection(name="x.vmdk", format="vmdk")):
        device = BlockDevice(volume_id=uuid.uuid4(), device="/dev/vdb", connection=connection)
        with pytest.raises(DriverError, match=f"The volume {device.volume_id} "):
            await driver.attach_volume(spec.server_id, device)
