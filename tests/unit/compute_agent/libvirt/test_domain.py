"""The domain XML the libvirt driver defines, read back with xpath."""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec
from lxml import etree

from services.compute_agent.drivers.base import GuestConfig, GuestSpec
from services.compute_agent.drivers.libvirt import domain
from shared.contracts.common import FlavorSpec, ImageSpec, Port
from shared.contracts.compute import BlockDevice
from shared.contracts.volume import VolumeConnection

FLAVOR = FlavorSpec(id="1", name="small", ram_mb=512, disk_gb=2, vcpus=2)
IMAGE = ImageSpec(id=uuid.uuid4(), name="tiny", location="tiny.qcow2", disk_format="qcow2")
GUEST = Path("/srv/guests/g")


def _spec(*ports: Port) -> GuestSpec:
    return GuestSpec(server_id=uuid.uuid4(), name="web <1> & co", flavor=FLAVOR, image=IMAGE,
                     ports=ports, config=GuestConfig(hostname="web"))


def _port(**kw: object) -> Port:
    args: dict[str, object] = {"id": uuid.uuid4(), "network_id": uuid.uuid4(), "network_name": "n",
                                   "address": "10.0.1.5", "mac": "fa:16:3e:00:00:05",
                                   "cidr": "10.0.1.0/24", "mtu": 1450}
    args.update(kw)
    return Port(**args)  # type: ignore[arg-type]


def _layout(**kw: object) -> domain.Layout:
    args: dict[str, object] = {"disks": (GUEST / "disk.qcow2",),
                                   "config_drive": GUEST / "config.iso",
                                   "console_log": GUEST / "console.log"}
    args.update(kw)
    return domain.Layout(**args)  # type: ignore[arg-type]


def _tree(spec: GuestSpec, layout: domain.Layout) -> etree._Element:
    return etree.fromstring(domain.build(spec, layout).encode())


def test_identity_size_and_machine_come_from_the_spec():
    spec = _spec()
    t = _tree(spec, _layout())
    assert t.get("type") == "qemu"
    assert t.xpath("string(name)") == f"nimbus-{spec.server_id}"
    assert t.xpath("string(uuid)") == str(spec.server_id)
    assert t.xpath("string(title)") == "web <1> & co"  # escaped by lxml, not by hand
    assert t.xpath("string(memory[@unit='MiB'])") == "512"
    assert t.xpath("string(vcpu)") == "2"
    assert t.xpath("string(os/type/@machine)") == "pc"
    assert t.xpath("string(on_poweroff)") == "destroy"
    assert _tree(spec, _layout(domain_type="kvm")).get("type") == "kvm"


def test_root_disk_is_virtio_qcow2_the_only_boot_device_and_the_drive_an_ide_cdrom():
    t = _tree(_spec(), _layout())
    disks = t.xpath("devices/disk")
    assert [(d.get("device"), d.xpath("string(target/@dev)"), d.xpath("string(target/@bus)"))
            for d in disks] == [("disk", "vda", "virtio"), ("cdrom", "hdd", "ide")]
    assert disks[0].xpath("string(source/@file)") == str(GUEST / "disk.qcow2")
    assert disks[0].xpath("string(driver/@type)") == "qcow2"
    assert not disks[0].xpath("readonly")
    # Per-device boot order, never <os><boot dev=...> (libvirt refuses both at once).
    assert t.xpath("devices//boot/@order") == ["1"] and not t.xpath("os/boot")
    assert disks[0].xpath("string(boot/@order)") == "1"
    # Not virtio: the guest would name it vdb, and the first volume would be vdc.
    assert disks[1].xpath("string(source/@file)") == str(GUEST / "config.iso")
    assert disks[1].xpath("string(driver/@type)") == "raw"
    assert disks[1].xpath("readonly")


def test_without_a_config_drive_there_is_one_disk():
    t = _tree(_spec(), _layout(config_drive=None))
    assert len(t.xpath("devices/disk")) == 1


def test_rescue_boots_its_own_disk_first_with_the_guest_disk_second_and_is_marked():
    layout = _layout(disks=(GUEST / "rescue.qcow2", GUEST / "disk.qcow2"),
                     config_drive=GUEST / "rescue-config.iso", rescued=True)
    xml = domain.build(_spec(), layout)
    t = etree.fromstring(xml.encode())
    assert t.xpath("devices/disk/source/@file") == [
        str(GUEST / "rescue.qcow2"), str(GUEST / "disk.qcow2"), str(GUEST / "rescue-config.iso")]
    assert t.xpath("devices/disk/target/@dev") == ["vda", "vdb", "hdd"]
    assert t.xpath("devices/disk[boot]/source/@file") == [str(GUEST / "rescue.qcow2")]
    assert domain.read_rescued(xml)
    assert not domain.read_rescued(domain.build(_spec(), _layout()))


def test_a_port_without_a_bridge_is_user_mode_networking_on_its_subnet():
    t = _tree(_spec(_port()), _layout())
    nic = t.xpath("devices/interface")[0]
    assert nic.get("type") == "user"
    assert nic.xpath("string(mac/@address)") == "fa:16:3e:00:00:05"
    assert nic.xpath("string(model/@type)") == "virtio"
    assert nic.xpath("string(ip/@address)") == "10.0.1.0"
    assert nic.xpath("string(ip/@prefix)") == "24"


def test_a_port_with_a_bridge_plugs_into_it_with_the_network_mtu():
    t = _tree(_spec(_port(bridge="br-n1"), _port(mac="fa:16:3e:00:00:06", cidr=None)), _layout())
    first, second = t.xpath("devices/interface")
    assert first.get("type") == "bridge"
    assert first.xpath("string(source/@bridge)") == "br-n1"
    assert first.xpath("string(mtu/@size)") == "1450"
    assert second.get("type") == "user" and not second.xpath("ip")


def test_serial_console_is_logged_by_appending_and_vnc_listens_where_told():
    t = _tree(_spec(), _layout(vnc_listen="0.0.0.0"))
    assert t.xpath("string(devices/serial/log/@file)") == str(GUEST / "console.log")
    assert t.xpath("string(devices/serial/log/@append)") == "on"
    assert t.xpath("string(devices/console/target/@type)") == "serial"
    vnc = t.xpath("devices/graphics[@type='vnc']")[0]
    assert vnc.get("autoport") == "yes" and vnc.get("listen") == "0.0.0.0"


def test_metadata_keeps_the_image_and_reads_back():
    xml = domain.build(_spec(), _layout())
    assert domain.read_image(xml) == ("tiny.qcow2", "qcow2")
    t = etree.fromstring(xml.encode())
    assert t.xpath("metadata/n:guest/n:image/@id", namespaces={"n": domain.NS}) == [str(IMAGE.id)]


def test_vnc_port_is_read_from_a_live_definition():
    live = etree.fromstring(domain.build(_spec(), _layout()).encode())
    assert domain.read_vnc_port(etree.tostring(live, encoding="unicode")) is None
    live.xpath("devices/graphics")[0].set("port", "5901")
    assert domain.read_vnc_port(etree.tostring(live, encoding="unicode")) == 5901
    live.xpath("devices/graphics")[0].set("port", "-1")
    assert domain.read_vnc_port(etree.tostring(live, encoding="unicode")) is None


# --- volumes ---

VOL_B, VOL_C, BOOT = (uuid.UUID(f"{n}0000000-1111-4222-8333-444455556666") for n in (1, 2, 3))


def _volume(volume_id: uuid.UUID, target: str, fmt: str = "qcow2") -> domain.VolumeDisk:
    return domain.VolumeDisk(volume_id=volume_id, path=Path(f"/srv/volumes/{volume_id}.qcow2"),
                             format=fmt, target=target)


def test_volumes_are_virtio_disks_at_their_targets_with_serial_and_alias_after_the_drive():
    layout = _layout(volumes=(_volume(VOL_C, "vdc", "raw"), _volume(VOL_B, "vdb")))
    t = _tree(_spec(), layout)
    assert t.xpath("devices/disk/target/@dev") == ["vda", "hdd", "vdb", "vdc"]
    vdb = t.xpath("devices/disk[target/@dev='vdb']")[0]
    assert vdb.get("type") == "file" and vdb.get("device") == "disk"
    assert vdb.xpath("string(driver/@name)") == "qemu"
    assert vdb.xpath("string(driver/@type)") == "qcow2"
    assert vdb.xpath("string(source/@file)") == f"/srv/volumes/{VOL_B}.qcow2"
    assert vdb.xpath("string(target/@bus)") == "virtio"
    assert vdb.xpath("string(serial)") == str(VOL_B)[:20] == "10000000-1111-4222-8"
    assert vdb.xpath("string(alias/@name)") == f"ua-volume-{VOL_B}"
    assert not vdb.xpath("boot") and not vdb.xpath("readonly")
    assert t.xpath("string(devices/disk[target/@dev='vdc']/driver/@type)") == "raw"
    assert domain.read_volumes(domain.build(_spec(), layout)) == [
        _volume(VOL_B, "vdb"), _volume(VOL_C, "vdc", "raw")]
    assert domain.read_targets(domain.build(_spec(), layout)) == {"vda", "hdd", "vdb", "vdc"}
    assert domain.read_volumes(domain.build(_spec(), _layout())) == []


def test_volume_xml_is_the_same_disk_alone():
    disk = etree.fromstring(domain.volume_xml(_volume(VOL_B, "vdd")).encode())
    assert disk.tag == "disk" and disk.xpath("string(target/@dev)") == "vdd"
    assert disk.xpath("string(alias/@name)") == f"ua-volume-{VOL_B}"
    wrapped = f"<domain><devices>{domain.volume_xml(_volume(VOL_B, 'vdd'))}</devices></domain>"
    assert domain.read_volumes(wrapped) == [_volume(VOL_B, "vdd")]


def test_a_boot_volume_is_the_root_disk_and_recorded_in_place_of_an_image():
    boot = BlockDevice(volume_id=BOOT, device="/dev/vda", boot=True,
                       connection=VolumeConnection(name=f"{BOOT}.qcow2"))
    spec = msgspec.structs.replace(_spec(), image=None, volumes=(boot,))
    layout = _layout(disks=(_volume(BOOT, "vda"),), volumes=(_volume(VOL_B, "vdb"),))
    xml = domain.build(spec, layout)
    t = etree.fromstring(xml.encode())
    assert t.xpath("devices/disk/target/@dev") == ["vda", "hdd", "vdb"]
    assert t.xpath("devices/disk[boot]/alias/@name") == [f"ua-volume-{BOOT}"]
    assert domain.read_boot_volume(xml) == BOOT and domain.read_image(xml) is None
    assert [v.volume_id for v in domain.read_volumes(xml)] == [BOOT, VOL_B]
    assert domain.read_boot_volume(domain.build(_spec(), _layout())) is None

    # Rescued: the rescue disk boots, the volume is the guest's disk second.
    rescue = _layout(disks=(GUEST / "rescue.qcow2", _volume(BOOT, "vda")), rescued=True)
    t = _tree(spec, rescue)
    assert t.xpath("devices/disk/target/@dev") == ["vda", "vdb", "hdd"]
    assert t.xpath("string(devices/disk[target/@dev='vdb']/alias/@name)") == f"ua-volume-{BOOT}"
    assert t.xpath("devices/disk[boot]/source/@file") == [str(GUEST / "rescue.qcow2")]
