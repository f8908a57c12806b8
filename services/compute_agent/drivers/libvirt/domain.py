"""Domain XML for a guest, built with lxml from a :class:`GuestSpec`.

Pure functions: no libvirt, no I/O. :func:`build` makes the definition
(normal or rescue), :func:`volume_xml` the disk of one attached volume, the
``read_*`` functions take what the driver needs back out of a definition libvirt
returns (``XMLDesc``).

Our own facts about a guest (its image or boot volume, whether it is rescued)
live in the domain's ``<metadata>`` under :data:`NS`, so libvirt keeps them with
the domain and an agent that restarts finds them again. Which volumes a guest
has is read from its disks themselves: each volume's disk carries the alias
``ua-volume-<volume id>``, which libvirt keeps in the persistent and the live
definition alike (and names in its device-removed event).

Disks and boot order: the root disk (``vda``) is the one boot device (``<boot
order='1'/>``), so no other disk, attached later or in another PCI slot, is ever
booted instead. The config drive is an IDE CD-ROM (``hdd``, as Nova's on ``pc``):
as a virtio disk it would take the guest's ``vdb``, and the guest names virtio
disks in the order it finds them, not by libvirt's target, so the first volume
would appear as ``vdc`` where the API said ``/dev/vdb``. The ``pc`` machine's
PCI bus takes hot-plugged devices itself (ACPI hotplug, 32 slots): no
hotpluggable root ports to reserve, as ``q35`` would need.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from lxml import etree

from services.compute_agent.drivers.base import GuestSpec
from shared.contracts.common import Port

NS = "https://nimbus.example/libvirt/guest/1"
"""Namespace of the driver's ``<metadata>`` element."""
PREFIX = "nimbus"
NAME_PREFIX = "nimbus-"
"""Every domain the driver makes is named ``nimbus-<server id>``."""


def domain_name(server_id: UUID) -> str:
    return f"{NAME_PREFIX}{server_id}"


VOLUME_ALIAS = "ua-volume-"
"""A volume's disk has the user alias ``ua-volume-<volume id>`` (libvirt's ``ua-``)."""
SERIAL_CHARS = 20
"""The disk serial is the volume id's first 20 characters, as Nova's shows in
the guest's ``/dev/disk/by-id`` (virtio-blk carries no more)."""


@dataclass(frozen=True, kw_only=True)
class VolumeDisk:
    """A volume as a disk of the guest."""

    volume_id: UUID
    path: Path
    format: str
    """``qcow2`` or ``raw``."""
    target: str
    """libvirt's name for it (``vdb``); the guest names disks in the order it finds them."""


@dataclass(frozen=True, kw_only=True)
class Layout:
    """Where a guest's files are, and how the host runs it."""

    disks: tuple[Path | VolumeDisk, ...]
    """The root disks in order, as vda, vdb, ...: the guest's qcow2 overlay or its
    boot volume (a rescue boots its own overlay first, the guest's root second).
    The first is the one boot device; their own targets are ignored."""
    config_drive: Path | None
    """ISO 9660 config drive, attached read-only as an IDE CD-ROM; None for none."""
    volumes: tuple[VolumeDisk, ...] = ()
    """Volumes attached besides, each at its own target."""
    console_log: Path
    domain_type: str = "qemu"
    vnc_listen: str = "127.0.0.1"
    rescued: bool = False


def _sub(parent: etree._Element, tag: str, text: str | None = None,
         **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def build(spec: GuestSpec, layout: Layout) -> str:
    """The domain definition of ``spec``'s guest with the files of ``layout``."""
    dom = etree.Element("domain", type=layout.domain_type)
    _sub(dom, "name", domain_name(spec.server_id))
    _sub(dom, "uuid", str(spec.server_id))
    _sub(dom, "title", spec.name[:200])
    _metadata(dom, spec, layout)
    _sub(dom, "memory", str(spec.flavor.ram_mb), unit="MiB")
    _sub(dom, "vcpu", str(spec.flavor.vcpus))
    os_ = _sub(dom, "os")
    _sub(os_, "type", "hvm", arch="x86_64", machine="pc")
    _sub(os_, "bios", useserial="yes")  # SeaBIOS prints to the serial console too
    features = _sub(dom, "features")
    _sub(features, "acpi")  # the power button (clean shutdown) is an ACPI event
    _sub(features, "apic")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")
    devices = _sub(dom, "devices")
    for i, root in enumerate(layout.disks):
        target = f"vd{chr(ord('a') + i)}"
        if isinstance(root, VolumeDisk):
            disk = _volume_disk(devices, root, target)
        else:
            disk = _sub(devices, "disk", type="file", device="disk")
            _sub(disk, "driver", name="qemu", type="qcow2")
            _sub(disk, "source", file=str(root))
            _sub(disk, "target", dev=target, bus="virtio")
        if i == 0:
            _sub(disk, "boot", order="1")
    if layout.config_drive is not None:
        disk = _sub(devices, "disk", type="file", device="cdrom")
        _sub(disk, "driver", name="qemu", type="raw")
        _sub(disk, "source", file=str(layout.config_drive))
        _sub(disk, "target", dev="hdd", bus="ide")
        _sub(disk, "readonly")
    for volume in sorted(layout.volumes, key=lambda v: (len(v.target), v.target)):
        _volume_disk(devices, volume, volume.target)
    for port in spec.ports:
        _interface(devices, port)
    serial = _sub(devices, "serial", type="pty")
    # QEMU appends what the guest writes to the file, across reboots and restarts.
    _sub(serial, "log", file=str(layout.console_log), append="on")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    _sub(devices, "graphics", type="vnc", autoport="yes", listen=layout.vnc_listen)
    _sub(devices, "memballoon", model="none")
    return etree.tostring(dom, pretty_print=True, encoding="unicode")


def _volume_disk(devices: etree._Element, volume: VolumeDisk, target: str) -> etree._Element:
    # cache and io stay QEMU's defaults (writeback): the guest's flushes reach the
    # file, and QEMU flushes it when the disk is unplugged or QEMU stops.
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type=volume.format)
    _sub(disk, "source", file=str(volume.path))
    _sub(disk, "target", dev=target, bus="virtio")
    _sub(disk, "serial", str(volume.volume_id)[:SERIAL_CHARS])
    _sub(disk, "alias", name=volume_alias(volume.volume_id))
    return disk


def volume_alias(volume_id: UUID) -> str:
    """The alias of the volume's disk (what libvirt's detach by alias takes)."""
    return f"{VOLUME_ALIAS}{volume_id}"


def volume_xml(volume: VolumeDisk) -> str:
    """The ``<disk>`` of one volume, for libvirt's attach."""
    holder = etree.Element("devices")
    return etree.tostring(_volume_disk(holder, volume, volume.target), encoding="unicode")


def _metadata(dom: etree._Element, spec: GuestSpec, layout: Layout) -> None:
    meta = _sub(dom, "metadata")
    guest = etree.SubElement(meta, f"{{{NS}}}guest", nsmap={PREFIX: NS})
    if spec.image is not None:
        image = etree.SubElement(guest, f"{{{NS}}}image", id=str(spec.image.id),
                                 format=spec.image.disk_format)
        image.text = spec.image.location or ""
    if spec.boot_volume is not None:
        etree.SubElement(guest, f"{{{NS}}}boot-volume", id=str(spec.boot_volume.volume_id))
    if layout.rescued:
        etree.SubElement(guest, f"{{{NS}}}rescued")


def _interface(devices: etree._Element, port: Port) -> None:
    if port.bridge:
        nic = _sub(devices, "interface", type="bridge")
        _sub(nic, "source", bridge=port.bridge)
    else:
        nic = _sub(devices, "interface", type="user")
    _sub(nic, "mac", address=port.mac)
    _sub(nic, "model", type="virtio")
    if port.bridge:
        # libvirt 9 refuses <mtu> on type user ("not supported yet", measured); the
        # guest still learns its MTU from the config drive's network_data.json.
        _sub(nic, "mtu", size=str(port.mtu))
    elif port.cidr and port.version == 4:
        # libvirt hands the subnet to QEMU's user-mode stack (its DHCP and gateway).
        net = ipaddress.ip_network(port.cidr, strict=False)
        _sub(nic, "ip", family="ipv4", address=str(net.network_address),
             prefix=str(net.prefixlen))


# --- reading a definition back ------------------------------------------------------


def _parse(xml: str) -> etree._Element:
    return etree.fromstring(xml.encode())


def read_rescued(xml: str) -> bool:
    """Whether the definition is a rescue one (see :func:`build`)."""
    return bool(_parse(xml).xpath("/domain/metadata/n:guest/n:rescued", namespaces={"n": NS}))


def read_image(xml: str) -> tuple[str, str] | None:
    """``(location, disk format)`` of the image the guest was made from; None if unknown."""
    found = _parse(xml).xpath("/domain/metadata/n:guest/n:image", namespaces={"n": NS})
    if not found or not found[0].text:
        return None
    return found[0].text, found[0].get("format", "raw")


def read_boot_volume(xml: str) -> UUID | None:
    """The volume the guest boots from; None if it boots from an image."""
    found = _parse(xml).xpath("/domain/metadata/n:guest/n:boot-volume/@id",
                              namespaces={"n": NS})
    return UUID(found[0]) if found else None


def read_volumes(xml: str) -> list[VolumeDisk]:
    """The volumes among the definition's disks (known by their alias), in order."""
    found = []
    for disk in _parse(xml).xpath("/domain/devices/disk[starts-with(alias/@name, $p)]",
                                  p=VOLUME_ALIAS):
        found.append(VolumeDisk(
            volume_id=UUID(disk.xpath("string(alias/@name)")[len(VOLUME_ALIAS):]),
            path=Path(disk.xpath("string(source/@file)")),
            format=disk.xpath("string(driver/@type)") or "raw",
            target=disk.xpath("string(target/@dev)")))
    return found


def read_targets(xml: str) -> set[str]:
    """The target of every disk of the definition (volumes or not)."""
    return {str(t) for t in _parse(xml).xpath("/domain/devices/disk/target/@dev")}


def read_vnc_port(xml: str) -> int | None:
    """The VNC port of a running domain's live definition; None if it has none yet."""
    ports = _parse(xml).xpath("/domain/devices/graphics[@type='vnc']/@port")
    if not ports or int(ports[0]) <= 0:
        return None
    return int(ports[0])
