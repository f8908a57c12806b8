"""What real guests need on this host: QEMU, libvirt, and the tools that build the
guest image (``deploy.guest_image``) and config drives.

Standard library only: ``make`` runs this with the system ``python3`` before the
virtualenv exists (``libvirt-python`` builds against ``libvirt-dev`` and
``pkg-config`` when the virtualenv installs it). Like ``deploy.local.infra``, it
leaves no system service running: a temporary policy-rc.d forbids maintainer
scripts from starting libvirtd, and on a systemd host the units this install
brought in are stopped and disabled afterwards. No libvirt daemon is needed: each
compute agent embeds libvirt's QEMU driver (``services/compute_agent/drivers/libvirt``).

CLI::

    python3 -m deploy.local.hypervisor ensure            install what is missing
    python3 -m deploy.local.hypervisor image --out DIR   build the guest image (if stale)
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

# Debian package -> a file it installs; the package is missing when the file is.
# (Checking files takes microseconds; asking dpkg takes about a second.)
PACKAGES: dict[str, str] = {
    "qemu-system-x86": "/usr/bin/qemu-system-x86_64",
    "qemu-utils": "/usr/bin/qemu-img",
    "libvirt-daemon": "/usr/sbin/libvirtd",
    "libvirt-daemon-driver-qemu": "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/"
                                  "libvirt_driver_qemu.so",
    "libvirt-clients": "/usr/bin/virsh",
    "libvirt-dev": "/usr/include/libvirt/libvirt.h",
    "pkg-config": "/usr/bin/pkg-config",
    "busybox-static": "/bin/busybox",
    "syslinux": "/usr/bin/syslinux",
    "syslinux-common": "/usr/lib/syslinux/mbr/mbr.bin",
    "mtools": "/usr/bin/mcopy",
    "dosfstools": "/usr/sbin/mkfs.vfat",
    "xorriso": "/usr/bin/xorriso",
    "cpio": "/usr/bin/cpio",
}
SYSTEMD_UNITS = ("libvirtd.service", "libvirtd.socket", "libvirtd-ro.socket",
                 "libvirtd-admin.socket", "virtlogd.service", "virtlogd.socket",
                 "virtlockd.service", "virtlockd.socket")


class HypervisorSetupError(RuntimeError):
    pass


def _log(msg: str) -> None:
    print(f"hypervisor: {msg}", file=sys.stderr, flush=True)


def _privileged(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return argv
    if shutil.which("sudo"):
        return ["sudo", "-E", *argv]
    raise HypervisorSetupError(f"need root or sudo to run: {shlex.join(argv)}")


def _run(argv: list[str], *, check: bool = True, timeout: float = 600,
         env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(argv, env=env, timeout=timeout, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    if check and proc.returncode != 0:
        raise HypervisorSetupError(f"{shlex.join(argv)} failed ({proc.returncode}):\n"
                                   f"{proc.stdout[-3000:]}")


def missing_packages() -> list[str]:
    """The packages whose marker file is absent (fast: no dpkg call)."""
    return [pkg for pkg, marker in PACKAGES.items() if not Path(marker).exists()]


def _busybox_is_static() -> bool:
    """Debian's dynamic ``busybox`` also installs /bin/busybox; the image needs the static one."""
    try:
        with open("/bin/busybox", "rb") as f:
            return b"ld-linux" not in f.read(4096)
    except OSError:
        return False


def ensure_packages() -> None:
    """Install the missing packages (``--no-install-recommends``). Idempotent, and a
    quick no-op when everything is present. No service is left running."""
    missing = missing_packages()
    if "busybox-static" not in missing and not _busybox_is_static():
        missing.append("busybox-static")
    if not missing:
        return
    if not shutil.which("apt-get"):
        raise HypervisorSetupError(f"missing {', '.join(missing)} and no apt-get to install them")
    _log(f"installing {' '.join(missing)} (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    policy = Path("/usr/sbin/policy-rc.d")
    own_policy = False
    if not policy.exists():
        # Forbid maintainer scripts from starting libvirtd, virtlogd and friends.
        script = f"printf '#!/bin/sh\\nexit 101\\n' > {policy} && chmod 755 {policy}"
        _run(_privileged(["sh", "-c", script]))
        own_policy = True
    try:
        _run(_privileged(["apt-get", "update", "-q"]), env=env, timeout=600)
        _run(_privileged(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                          *missing]), env=env, timeout=1200)
    finally:
        if own_policy:
            _run(_privileged(["rm", "-f", str(policy)]), check=False)
    if ("libvirt-daemon" in missing and Path("/run/systemd/system").is_dir()
            and shutil.which("systemctl")):
        # Only when this install brought libvirt's daemon in: a libvirt the host
        # already had (and may use) is left as it was.
        _run(_privileged(["systemctl", "disable", "--now", *SYSTEMD_UNITS]), check=False)
    still = missing_packages()
    if still:
        raise HypervisorSetupError(f"still missing after install: {', '.join(still)}")
    _log("packages installed")


def guest_processes(root: Path) -> list[int]:
    """QEMU processes of the guests kept under ``root`` (a libvirt driver's state
    directory): libvirt starts each with its disks and secrets there."""
    return qemu_processes(str(root.resolve()))


def qemu_processes(mark: str) -> list[int]:
    """QEMU processes with ``mark`` in an argument (a path, a guest's uuid)."""
    needle = mark.encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"qemu-system" in argv[0] and any(needle in a for a in argv):
            found.append(int(proc.name))
    return found


def stop_guests(root: Path, timeout: float = 10.0) -> int:
    """Power off every guest under ``root`` as a host shutdown would (SIGTERM: QEMU
    exits; SIGKILL what is left after ``timeout``); how many there were. Their
    definitions and disks stay: the agent sees them stopped when it comes back."""
    pids = guest_processes(root)
    count = len(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = guest_processes(root)  # afresh: a pid that exited may be someone else's now
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and guest_processes(root):
            time.sleep(0.1)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m deploy.local.hypervisor")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ensure", help="install QEMU, libvirt and the image tools if missing")
    img = sub.add_parser("image", help="build the Nimbus Tiny Linux image unless up to date")
    img.add_argument("--out", type=Path, required=True)
    img.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "ensure":
            ensure_packages()
        else:
            from deploy.guest_image import BuildError, ensure_image
            try:
                print(ensure_image(args.out, force=args.force))
            except BuildError as exc:
                raise HypervisorSetupError(str(exc)) from exc
    except HypervisorSetupError as exc:
        _log(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
