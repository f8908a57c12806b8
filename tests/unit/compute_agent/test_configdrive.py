"""The config drive is a real ISO image that reads back as what the guest was given."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from services.compute_agent.drivers import configdrive
from services.compute_agent.drivers.base import DriverError, GuestConfig, GuestSpec
from services.compute_agent.drivers.configdrive import build_config_drive
from shared.contracts.common import FlavorSpec, ImageSpec, Port
from shared.contracts.compute import InjectedFile

pytestmark = pytest.mark.skipif(not shutil.which("xorriso"), reason="needs xorriso "
                                "(python3 -m deploy.local.hypervisor ensure)")

FLAVOR = FlavorSpec(id="1", name="tiny", ram_mb=256, disk_gb=1, vcpus=1)
IMAGE = ImageSpec(id=uuid.uuid4(), name="nimbus-tiny")
PORTS = (
    Port(id=uuid.UUID("11111111-2222-3333-4444-555555555555"), network_id=uuid.uuid4(),
         network_name="private", address="10.0.1.5", mac="FA:16:3E:00:00:05",
         cidr="10.0.1.0/24", gateway="10.0.1.1", mtu=1450),
    Port(id=uuid.UUID("66666666-7777-8888-9999-aaaaaaaaaaaa"), network_id=uuid.uuid4(),
         network_name="storage", address="192.168.7.20", mac="fa:16:3e:00:00:06",
         cidr="192.168.7.0/26"),
)


def _spec(**config) -> GuestSpec:
    config.setdefault("hostname", "web-1")
    return GuestSpec(server_id=uuid.uuid4(), name="Web 1", flavor=FLAVOR, image=IMAGE,
                     ports=PORTS, config=GuestConfig(**config))


def _extract(iso: Path, into: Path) -> Path:
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(into)],
                   check=True, capture_output=True)
    return into


def _label(iso: Path) -> str:
    out = subprocess.run(["xorriso", "-indev", str(iso), "-pvd_info"], check=True,
                         capture_output=True, text=True).stdout
    return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                if line.startswith("Volume Id"))


def test_drive_reads_back_as_the_openstack_layout(tmp_path: Path) -> None:
    files = (InjectedFile(path="/etc/motd", contents=b"hello\n"),
             InjectedFile(path="/../../etc/shadow", contents=bytes(range(256))))
    spec = _spec(metadata={"role": "web"}, files=files, user_data=b"#!/bin/sh\necho hi\n\x00\xff",
                 public_keys={"mykey": "ssh-ed25519 AAAA me@host"})
    iso = tmp_path / "disk.config"
    build_config_drive(spec, iso)

    assert _label(iso) == "config-2"
    root = _extract(iso, tmp_path / "out")
    meta = json.loads((root / "openstack/latest/meta_data.json").read_text())
    assert meta["uuid"] == str(spec.server_id)
    assert meta["name"] == "Web 1" and meta["hostname"] == "web-1"
    assert meta["meta"] == {"role": "web"} and meta["launch_index"] == 0
    assert meta["public_keys"] == {"mykey": "ssh-ed25519 AAAA me@host"}
    assert meta["files"] == [{"path": "/etc/motd", "content_path": "/content/0000"},
                             {"path": "/../../etc/shadow", "content_path": "/content/0001"}]
    assert "admin_pass" not in meta
    assert (root / "openstack/2012-08-10/meta_data.json").read_text() == \
        (root / "openstack/latest/meta_data.json").read_text()
    assert (root / "openstack/content/0000").read_bytes() == b"hello\n"
    assert (root / "openstack/content/0001").read_bytes() == bytes(range(256))
    assert (root / "openstack/latest/user_data").read_bytes() == spec.config.user_data
    assert json.loads((root / "openstack/latest/vendor_data.json").read_text()) == {}
    # A user's path is only ever a string in the JSON: nothing else is on the drive.
    on_drive = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert on_drive == ["openstack/2012-08-10/meta_data.json", "openstack/2012-08-10/user_data",
                        "openstack/content/0000", "openstack/content/0001",
                        "openstack/latest/meta_data.json", "openstack/latest/network_data.json",
                        "openstack/latest/user_data", "openstack/latest/vendor_data.json"]
    # Nothing of the build is left beside the drive.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.config", "out"]


def test_network_data_has_a_link_and_a_network_per_port(tmp_path: Path) -> None:
    iso = tmp_path / "disk.config"
    build_config_drive(_spec(), iso)
    net = json.loads((_extract(iso, tmp_path / "out") / "openstack/latest/network_data.json")
                     .read_text())
    assert net["services"] == []
    assert net["links"] == [
        {"id": "tap11111111-22", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:05",
         "mtu": 1450},
        {"id": "tap66666666-77", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:06",
         "mtu": 1500},
    ]
    first, second = net["networks"]
    assert first == {"id": "network0", "type": "ipv4", "link": "tap11111111-22",
                     "ip_address": "10.0.1.5", "netmask": "255.255.255.0",
                     "network_id": str(PORTS[0].network_id),
                     "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0",
                                 "gateway": "10.0.1.1"}]}
    assert second["link"] == "tap66666666-77" and second["ip_address"] == "192.168.7.20"
    assert second["netmask"] == "255.255.255.192" and second["routes"] == []


def test_without_user_data_there_is_no_user_data_file(tmp_path: Path) -> None:
    iso = tmp_path / "disk.config"
    build_config_drive(_spec(admin_pass="s3cret"), iso)
    root = _extract(iso, tmp_path / "out")
    assert not (root / "openstack/latest/user_data").exists()
    meta = json.loads((root / "openstack/latest/meta_data.json").read_text())
    assert meta["admin_pass"] == "s3cret"


def test_json_has_one_key_per_line_in_a_stable_order(tmp_path: Path) -> None:
    """The tiny guest parses these files with awk: their shape is part of the contract."""
    iso = tmp_path / "disk.config"
    build_config_drive(_spec(), iso)
    text = (_extract(iso, tmp_path / "out") / "openstack/latest/network_data.json").read_text()
    assert '   "ethernet_mac_address": "fa:16:3e:00:00:05",\n' in text
    assert '   "ip_address": "10.0.1.5",\n' in text
    assert '     "gateway": "10.0.1.1",\n' in text


def test_a_rebuild_replaces_the_drive(tmp_path: Path) -> None:
    iso = tmp_path / "disk.config"
    build_config_drive(_spec(hostname="old"), iso)
    build_config_drive(_spec(hostname="new"), iso)
    meta = json.loads((_extract(iso, tmp_path / "out") / "openstack/latest/meta_data.json")
                      .read_text())
    assert meta["hostname"] == "new"


def test_a_failing_tool_is_a_driver_error_without_its_output(tmp_path, monkeypatch) -> None:
    # The real tool, given an option it refuses.
    monkeypatch.setattr(configdrive, "_iso_command",
                        lambda staging, out: ["xorriso", "-as", "mkisofs", "--no-such-option",
                                              "-o", str(out), str(staging)])
    iso = tmp_path / "disk.config"
    with pytest.raises(DriverError) as err:
        build_config_drive(_spec(), iso)
    assert "no-such-option" not in str(err.value) and "xorriso" not in str(err.value)
    assert list(tmp_path.iterdir()) == []
