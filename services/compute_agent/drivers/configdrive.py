"""The config drive: what the user gave a guest, as an ISO 9660 image cloud-init reads.

:func:`build_config_drive` writes the OpenStack layout (volume label ``config-2``,
Joliet and Rock Ridge)::

    openstack/latest/meta_data.json       uuid, name, hostname, meta, public_keys, files, ...
    openstack/latest/user_data            the user data bytes (only when given)
    openstack/latest/network_data.json    links and networks, from the guest's ports
    openstack/latest/vendor_data.json     {}
    openstack/2012-08-10/meta_data.json   the same, for readers that ask for the oldest version
    openstack/2012-08-10/user_data
    openstack/content/0000, 0001, ...     the injected files' bytes

The JSON is written with sorted keys and one key per line, so that a reader
without a JSON parser (the project's tiny guest, ``deploy/guest_image/init.sh``,
reads it with awk) can rely on its shape.

Paths inside the drive are all chosen here: the injected files are numbered,
and the paths users gave appear only as strings inside ``meta_data.json``.

Blocking (it runs an ISO tool): the driver calls it in a thread.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import structlog

from services.compute_agent.drivers.base import DriverError, GuestSpec
from shared.contracts.common import Port

log = structlog.get_logger(__name__)

LABEL = "config-2"
VERSIONS = ("2012-08-10", "latest")
"""The metadata versions written; ``latest`` carries everything."""
TOOL_TIMEOUT_S = 120.0


def build_config_drive(spec: GuestSpec, path: Path) -> None:
    """Write the guest's config drive to ``path`` (replacing any file there).

    The image appears whole or not at all: it is built under a temporary name
    beside ``path`` and renamed into place. DriverError (worded for the user)
    if no ISO tool is installed or the tool fails; its output goes to the log.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        staging = Path(tmp) / "drive"
        _stage(spec, staging)
        iso = Path(tmp) / "drive.iso"
        _make_iso(spec, staging, iso)
        # Owner-only: the drive holds the user data and, when one was set, the
        # admin password (meta_data.json's admin_pass, as Nova's drive has it).
        os.chmod(iso, 0o600)
        os.replace(iso, path)
    log.info("configdrive.built", server_id=str(spec.server_id), path=str(path))


def meta_data(spec: GuestSpec) -> dict[str, Any]:
    """The ``meta_data.json`` document (injected files by their content names)."""
    cfg = spec.config
    doc: dict[str, Any] = {
        "uuid": str(spec.server_id),
        "name": spec.name,
        "hostname": cfg.hostname,
        "launch_index": 0,
        "meta": dict(cfg.metadata),
        "public_keys": dict(cfg.public_keys),
        "keys": [{"name": name, "type": "ssh", "data": key}
                 for name, key in sorted(cfg.public_keys.items())],
        "files": [{"path": f.path, "content_path": f"/content/{i:04d}"}
                  for i, f in enumerate(cfg.files)],
    }
    if cfg.admin_pass is not None:
        doc["admin_pass"] = cfg.admin_pass  # as Nova's metadata does
    return doc


def network_data(ports: tuple[Port, ...]) -> dict[str, Any]:
    """The ``network_data.json`` document: one link and one network per port."""
    links, networks = [], []
    for i, port in enumerate(ports):
        link_id = f"tap{str(port.id)[:11]}"
        links.append({"id": link_id, "type": "phy",
                      "ethernet_mac_address": port.mac.lower(), "mtu": port.mtu})
        iface = _interface(port)
        net: dict[str, Any] = {
            "id": f"network{i}",
            "type": "ipv6" if iface.version == 6 else "ipv4",
            "link": link_id,
            "ip_address": str(iface.ip),
            "netmask": str(iface.netmask),
            "network_id": str(port.network_id),
            "routes": [],
        }
        if port.gateway:
            anywhere = "::" if iface.version == 6 else "0.0.0.0"
            net["routes"].append({"network": anywhere, "netmask": anywhere,
                                  "gateway": port.gateway})
        networks.append(net)
    return {"links": links, "networks": networks, "services": []}


def _interface(port: Port) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """The port's address with its subnet's prefix (a host prefix when the subnet
    is not known)."""
    addr = ipaddress.ip_address(port.address)
    if port.cidr:
        prefix = ipaddress.ip_network(port.cidr, strict=False).prefixlen
    else:
        prefix = addr.max_prefixlen
    return ipaddress.ip_interface(f"{addr}/{prefix}")


def _dump(doc: Any) -> bytes:
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def _stage(spec: GuestSpec, root: Path) -> None:
    """Lay out the drive's files under ``root``; every name here is ours."""
    meta = _dump(meta_data(spec))
    network = _dump(network_data(spec.ports))
    for version in VERSIONS:
        d = root / "openstack" / version
        d.mkdir(parents=True)
        (d / "meta_data.json").write_bytes(meta)
        if spec.config.user_data is not None:
            (d / "user_data").write_bytes(spec.config.user_data)
    latest = root / "openstack" / "latest"
    (latest / "network_data.json").write_bytes(network)
    (latest / "vendor_data.json").write_bytes(b"{}\n")
    content = root / "openstack" / "content"
    content.mkdir()
    for i, f in enumerate(spec.config.files):
        (content / f"{i:04d}").write_bytes(f.contents)


def _iso_command(staging: Path, out: Path) -> list[str]:
    args = ["-o", str(out), "-V", LABEL, "-J", "-r", "-input-charset", "utf-8",
            "-quiet", str(staging)]
    if shutil.which("xorriso"):
        return ["xorriso", "-as", "mkisofs", *args]
    if shutil.which("genisoimage"):
        return ["genisoimage", *args]
    raise FileNotFoundError("xorriso")


def _make_iso(spec: GuestSpec, staging: Path, out: Path) -> None:
    failed = "The configuration drive for the server could not be built."
    try:
        argv = _iso_command(staging, out)
        proc = subprocess.run(argv, capture_output=True, timeout=TOOL_TIMEOUT_S, check=False)
    except FileNotFoundError:
        log.error("configdrive.no_tool", server_id=str(spec.server_id),
                  wanted="xorriso or genisoimage")
        raise DriverError(f"{failed} The host has no ISO image tool.") from None
    except subprocess.TimeoutExpired:
        log.error("configdrive.timeout", server_id=str(spec.server_id), timeout_s=TOOL_TIMEOUT_S)
        raise DriverError(failed) from None
    if proc.returncode != 0 or not out.is_file():
        log.error("configdrive.tool_failed", server_id=str(spec.server_id), argv=argv,
                  returncode=proc.returncode,
                  stderr=proc.stderr.decode(errors="replace")[-4000:])
        raise DriverError(failed)
