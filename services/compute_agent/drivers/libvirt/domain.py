"""Domain XML for a guest, built with lxml from a :class:`GuestSpec`.

Pure functions: no libvirt, no I/O. :func:`build` makes the definition
(normal or rescue), the ``read_*`` functions take what the driver needs back
out of a definition libvirt returns (``XMLDesc``).

Our own facts about a guest (its image, whether it is rescued) live in the
domain's ``<metadata>`` under :data:`NS`, so libvirt keeps them with the domain
and an agent that restarts finds them again.
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


@dataclass(frozen=True, kw_only=True)
class Layout:
    """Where a guest's files are, and how the host runs it."""

    disks: tuple[Path, ...]
    """qcow2 disks in boot order: vda, vdb, ... (a rescue boots its own overlay first)."""
    config_drive: Path | None
    """ISO 9660 config drive, attached read-only after the disks; None for none."""
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
    _sub(os_, "boot", dev="hd")
    _sub(os_, "bios", useserial="yes")  # SeaBIOS prints to the serial console too
    features = _sub(dom, "features")
    _sub(features, "acpi")  # the power button (clean shutdown) is an ACPI event
    _sub(features, "apic")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")
    devices = _sub(dom, "devices")
    targets = (f"vd{chr(ord('a') + i)}" for i in range(26))
    for path in layout.disks:
        disk = _sub(devices, "disk", type="file", device="disk")
        _sub(disk, "driver", name="qemu", type="qcow2")
        _sub(disk, "source", file=str(path))
        _sub(disk, "target", dev=next(targets), bus="virtio")
    if layout.config_drive is not None:
        disk = _sub(devices, "disk", type="file", device="disk")
        _sub(disk, "driver", name="qemu", type="raw")
        _sub(disk, "source", file=str(layout.config_drive))
        _sub(disk, "target", dev=next(targets), bus="virtio")
        _sub(disk, "readonly")
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


def _metadata(dom: etree._Element, spec: GuestSpec, layout: Layout) -> None:
    meta = _sub(dom, "metadata")
    guest = etree.SubElement(meta, f"{{{NS}}}guest", nsmap={PREFIX: NS})
    image = etree.SubElement(guest, f"{{{NS}}}image", id=str(spec.image.id),
                             format=spec.image.disk_format)
    image.text = spec.image.location or ""
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


def read_vnc_port(xml: str) -> int | None:
    """The VNC port of a running domain's live definition; None if it has none yet."""
    ports = _parse(xml).xpath("/domain/devices/graphics[@type='vnc']/@port")
    if not ports or int(ports[0]) <= 0:
        return None
    return int(ports[0])
