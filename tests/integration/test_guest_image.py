"""Nimbus Tiny Linux boots under QEMU (TCG), reads its config drive and counts its boots.

Real QEMU, real image, real config drive: the image is built once into
``.run/images`` (``NIMBUS_GUEST_IMAGE_DIR`` overrides; the build is skipped while
its inputs are unchanged) and each guest boots from its own qcow2 overlay. The
tests wait for console lines with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.guest_image import ensure_image, read_manifest
from services.compute_agent.drivers.base import GuestConfig, GuestSpec
from services.compute_agent.drivers.configdrive import build_config_drive
from shared.contracts.common import FlavorSpec, ImageSpec, Port

BOOT_DEADLINE_S = 180.0
"""TCG on a busy 2-core machine: ready takes ~7 s alone, much longer when shared."""
SERVER_A = uuid.UUID("aaaaaaaa-1111-4111-8111-000000000001")
SERVER_B = uuid.UUID("bbbbbbbb-2222-4222-8222-000000000002")
MAC_1, MAC_2 = "52:54:00:4e:00:01", "52:54:00:4e:00:02"


def _spec(server_id: uuid.UUID, hostname: str, user_data: bytes | None) -> GuestSpec:
    ports = (
        Port(id=uuid.uuid4(), network_id=uuid.uuid4(), network_name="private",
             address="10.0.1.5", mac=MAC_1, cidr="10.0.1.0/24", gateway="10.0.1.1", mtu=1450),
        Port(id=uuid.uuid4(), network_id=uuid.uuid4(), network_name="storage",
             address="192.168.7.20", mac=MAC_2, cidr="192.168.7.0/26"),
    )
    return GuestSpec(server_id=server_id, name=hostname,
                     flavor=FlavorSpec(id="1", name="tiny", ram_mb=256, disk_gb=1, vcpus=1),
                     image=ImageSpec(id=uuid.uuid4(), name="nimbus-tiny"), ports=ports,
                     config=GuestConfig(hostname=hostname, user_data=user_data))


class Guest:
    """One QEMU process: serial console to a file, QMP on a unix socket."""

    def __init__(self, workdir: Path, disks: list[tuple[Path, str, str]]) -> None:
        """``disks``: (file, format, how) with how ``rw`` or ``ro`` (virtio disks, the
        first boots) or ``cdrom`` (an IDE CD-ROM, as libvirt may attach a config drive)."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "console.log"
        self.qmp_path = workdir / "qmp.sock"
        argv = ["qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", "256",
                "-display", "none", "-nodefaults", "-no-user-config",
                "-serial", f"file:{self.log}",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        for i, (path, fmt, how) in enumerate(disks):
            if how == "cdrom":
                argv += ["-drive", f"file={path},if=ide,media=cdrom,format={fmt},readonly=on"]
                continue
            ro = ",readonly=on" if how == "ro" else ""
            boot = ",bootindex=1" if i == 0 else ""
            argv += ["-drive", f"file={path},if=none,id=disk{i},format={fmt}{ro}",
                     "-device", f"virtio-blk-pci,drive=disk{i}{boot}"]
        for i, mac in enumerate((MAC_1, MAC_2)):
            argv += ["-netdev", f"user,id=net{i}",
                     "-device", f"virtio-net-pci,netdev=net{i},mac={mac}"]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def console(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for(self, line: str, deadline_s: float = BOOT_DEADLINE_S) -> float:
        """Seconds since QEMU started when ``line`` (a whole console line) appeared."""
        pattern = re.compile(rf"^{re.escape(line)}\r?$", re.MULTILINE)
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if pattern.search(self.console()):
                return time.monotonic() - self.started
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)  # polling a file for a condition, with a deadline
        raise AssertionError(f"no {line!r} on the console (qemu rc={self.proc.poll()}):\n"
                             f"{self.console()[-3000:]}")

    def lines(self) -> list[str]:
        return [ln.rstrip("\r") for ln in self.console().splitlines()
                if ln.startswith("nimbus-tiny: ")]

    def qmp(self, command: str) -> dict:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(str(self.qmp_path))
            f = s.makefile("rw")
            json.loads(f.readline())  # the greeting
            for cmd in ("qmp_capabilities", command):
                f.write(json.dumps({"execute": cmd}) + "\n")
                f.flush()
                while "return" not in (reply := json.loads(f.readline())) and "error" not in reply:
                    pass  # an event
            return reply

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def guests() -> Iterator[list[Guest]]:
    started: list[Guest] = []
    yield started
    for g in started:
        g.stop()


def _overlay(base: Path, path: Path) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base.resolve()),
                    "-F", "qcow2", str(path)], check=True)
    return path


def _boot(guests: list[Guest], workdir: Path, disks: list[tuple[Path, str, str]]) -> Guest:
    g = Guest(workdir, disks)
    guests.append(g)
    return g


def test_manifest_describes_the_image_and_a_second_ensure_does_nothing(tiny_image: Path) -> None:
    manifest = read_manifest(tiny_image.parent)
    assert manifest is not None and manifest["file"] == tiny_image.name
    assert manifest["kernel_package"].startswith("linux-image-")
    assert manifest["size"] == tiny_image.stat().st_size
    assert "virtio_blk" in manifest["modules"] and "isofs" in manifest["modules"]
    assert manifest["modules"].index("virtio") < manifest["modules"].index("virtio_pci")
    before = tiny_image.stat().st_mtime_ns
    started = time.monotonic()
    assert ensure_image(tiny_image.parent) == tiny_image
    assert time.monotonic() - started < 5
    assert tiny_image.stat().st_mtime_ns == before


def test_an_image_from_other_inputs_is_rebuilt(tiny_image: Path, tmp_path: Path) -> None:
    out = tmp_path / "images"
    (out / ".cache").mkdir(parents=True)
    for deb in (tiny_image.parent / ".cache").glob("*.deb"):
        os.link(deb, out / ".cache" / deb.name)  # no second download
    shutil.copy(tiny_image, out / tiny_image.name)
    manifest = read_manifest(tiny_image.parent)
    assert manifest is not None
    stale = dict(manifest, input_hash="0" * 64)
    (out / "nimbus-tiny.json").write_text(json.dumps(stale))
    before = (out / tiny_image.name).stat().st_ino

    assert ensure_image(out) == out / tiny_image.name
    rebuilt = read_manifest(out)
    assert rebuilt is not None and rebuilt["input_hash"] == manifest["input_hash"]
    assert (out / tiny_image.name).stat().st_ino != before
    assert rebuilt["size"] == (out / tiny_image.name).stat().st_size
    assert rebuilt["build_seconds"] < 60, rebuilt  # the target: well under a minute
    print(f"\nnimbus-tiny: built in {rebuilt['build_seconds']} s")
    assert not [p for p in out.iterdir() if p.name.startswith(".build-")]


def test_boots_configures_itself_and_powers_off_on_the_button(tiny_image, guests, tmp_path):
    disk = _overlay(tiny_image, tmp_path / "a.qcow2")
    drive = tmp_path / "a.config"
    build_config_drive(_spec(SERVER_A, "tiny-a", b"#!/bin/sh\necho from user data\n"), drive)

    first = _boot(guests, tmp_path / "boot1", [(disk, "qcow2", "rw"), (drive, "raw", "ro")])
    ready_s = first.wait_for("nimbus-tiny: ready")
    print(f"\nnimbus-tiny: QEMU start to ready in {ready_s:.1f} s (TCG)")
    lines = first.lines()
    assert re.fullmatch(r"nimbus-tiny: booting \(kernel \S+\)", lines[0])
    assert "nimbus-tiny: hostname=tiny-a" in lines
    assert f"nimbus-tiny: uuid={SERVER_A}" in lines
    assert "nimbus-tiny: user-data: #!/bin/sh" in lines
    assert any(re.fullmatch(rf"nimbus-tiny: ip=10\.0\.1\.5/24 dev eth\d mac={MAC_1}", ln)
               for ln in lines), lines
    assert any(re.fullmatch(rf"nimbus-tiny: ip=192\.168\.7\.20/26 dev eth\d mac={MAC_2}", ln)
               for ln in lines), lines
    assert f"nimbus-tiny: disk boot 1, first booted by {SERVER_A}" in lines
    assert "nimbus-tiny: no config drive" not in lines

    assert first.qmp("system_powerdown") == {"return": {}}
    first.wait_for("nimbus-tiny: power button: shutting down", 60)
    assert first.proc.wait(60) == 0

    # The same disk again, without a config drive: it remembers.
    second = _boot(guests, tmp_path / "boot2", [(disk, "qcow2", "rw")])
    second.wait_for("nimbus-tiny: ready")
    lines = second.lines()
    assert "nimbus-tiny: no config drive" in lines
    assert f"nimbus-tiny: disk boot 2, first booted by {SERVER_A}" in lines


def test_a_snapshot_boots_as_another_server_and_rescue_finds_the_disk(tiny_image, guests,
                                                                      tmp_path):
    disk_a = _overlay(tiny_image, tmp_path / "a.qcow2")
    drive_a = tmp_path / "a.config"
    build_config_drive(_spec(SERVER_A, "tiny-a", None), drive_a)
    a = _boot(guests, tmp_path / "a", [(disk_a, "qcow2", "rw"), (drive_a, "raw", "ro")])
    a.wait_for("nimbus-tiny: ready")
    a.qmp("system_powerdown")
    assert a.proc.wait(60) == 0

    # A snapshot of A's disk (a full copy, as the driver makes one) boots as B, its
    # config drive on an IDE CD-ROM (/dev/sr0) this time.
    snap = tmp_path / "snap.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(disk_a), str(snap)], check=True)
    drive_b = tmp_path / "b.config"
    build_config_drive(_spec(SERVER_B, "tiny-b", None), drive_b)
    b = _boot(guests, tmp_path / "b", [(_overlay(snap, tmp_path / "b.qcow2"), "qcow2", "rw"),
                                       (drive_b, "raw", "cdrom")])
    b.wait_for("nimbus-tiny: ready")
    assert f"nimbus-tiny: uuid={SERVER_B}" in b.lines()
    assert "nimbus-tiny: hostname=tiny-b" in b.lines()
    assert f"nimbus-tiny: disk boot 2, first booted by {SERVER_A}" in b.lines()
    assert not any(ln.startswith("nimbus-tiny: user-data:") for ln in b.lines())
    b.stop()

    # Rescue of A: a fresh image first, A's own disk second, the config drive third.
    rescue = _boot(guests, tmp_path / "rescue",
                   [(_overlay(tiny_image, tmp_path / "r.qcow2"), "qcow2", "rw"),
                    (disk_a, "qcow2", "rw"), (drive_a, "raw", "ro")])
    rescue.wait_for("nimbus-tiny: ready")
    lines = rescue.lines()
    assert (f"nimbus-tiny: rescue: found the server's disk on vdb "
            f"(boot 1, first booted by {SERVER_A})") in lines
    assert "nimbus-tiny: hostname=tiny-a" in lines  # found by label, though third
    assert f"nimbus-tiny: disk boot 1, first booted by {SERVER_A}" in lines
