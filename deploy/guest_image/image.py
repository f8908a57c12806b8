"""Assemble the Nimbus Tiny Linux disk and its manifest; skip it when nothing changed.

The disk is one FAT filesystem with no partition table (a "superfloppy"):
``mkfs.vfat`` on a plain file, ``syslinux --install`` (the mtools-based
installer: no loop device, no mount, so it works in a container), then
``mcopy`` of the kernel, the initramfs and ``syslinux.cfg``. SeaBIOS boots it
as a hard disk: it runs sector 0, which is syslinux's FAT boot sector, and that
finds ``ldlinux.sys`` through the BPB's hidden-sector count (0 here). No
partition table means no offset to get right and the guest mounts ``/dev/vda``
itself. The raw file is then converted to qcow2.

The build inputs (the kernel package's name and version, busybox's bytes,
syslinux's version, this package's sources and the kernel command line) are
hashed into the manifest; :func:`ensure_image` rebuilds only when that hash
changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from deploy.guest_image import initramfs, kernel

IMAGE_NAME = "nimbus-tiny"
DISK_MB = 64
"""The FAT filesystem's size; the qcow2 holds only what is written (about 10 MB)."""
CMDLINE = "console=tty0 console=ttyS0,115200 panic=-1"
BUSYBOX = Path("/bin/busybox")
SYSLINUX_CFG = f"""SERIAL 0 115200
DEFAULT nimbus
PROMPT 0
TIMEOUT 0
LABEL nimbus
  KERNEL /vmlinuz
  INITRD /initrd.gz
  APPEND {CMDLINE}
"""
TOOLS = ("mkfs.vfat", "syslinux", "mcopy", "qemu-img")
HERE = Path(__file__).resolve().parent


class BuildError(RuntimeError):
    """The image could not be built (a tool is missing or failed)."""


def _run(argv: list[str], **kw) -> str:
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300,
                          check=False, **kw)
    if proc.returncode != 0:
        raise BuildError(f"{' '.join(argv)} failed ({proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc.stdout


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _busybox_version() -> str:
    out = subprocess.run([str(BUSYBOX)], capture_output=True, text=True, timeout=10,
                         check=False).stdout
    first = out.splitlines()[0] if out else ""
    return first.split(" multi-call")[0].removeprefix("BusyBox ").strip() or "unknown"


def _check_busybox() -> None:
    if not BUSYBOX.is_file():
        raise BuildError(f"{BUSYBOX} missing: install busybox-static")
    if b"ld-linux" in BUSYBOX.read_bytes()[:4096]:
        raise BuildError(f"{BUSYBOX} is dynamically linked: install busybox-static")


def _syslinux_version() -> str:
    out = subprocess.run(["syslinux", "--version"], capture_output=True, text=True, timeout=10,
                         check=False)
    return (out.stderr or out.stdout).strip().splitlines()[0] if (out.stderr or out.stdout) else ""


def input_hash(pkg: kernel.KernelPackage) -> str:
    """What the image is made of; equal hashes make equal images."""
    h = hashlib.sha256()
    for part in (pkg.name, pkg.version, CMDLINE, SYSLINUX_CFG, str(DISK_MB),
                 _sha256(BUSYBOX), _syslinux_version(), ",".join(kernel.WANTED_MODULES)):
        h.update(part.encode() + b"\x00")
    for src in sorted(HERE.glob("*.py")) + sorted(HERE.glob("*.sh")):
        h.update(src.name.encode() + b"\x00" + src.read_bytes() + b"\x00")
    return h.hexdigest()


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None] + kernel.have_tools()


def _make_disk(vmlinuz: Path, initrd: Path, raw: Path, work: Path) -> None:
    with raw.open("wb") as f:
        f.truncate(DISK_MB * 1024 * 1024)
    _run(["mkfs.vfat", "-n", "NIMBUS-TINY", "-i", "4e494d42", str(raw)])
    _run(["syslinux", "--install", str(raw)])
    cfg = work / "syslinux.cfg"
    cfg.write_text(SYSLINUX_CFG)
    for src, dst in ((vmlinuz, "vmlinuz"), (initrd, "initrd.gz"), (cfg, "syslinux.cfg")):
        _run(["mcopy", "-o", "-i", str(raw), str(src), f"::/{dst}"])


def build(out_dir: Path, *, pkg: kernel.KernelPackage | None = None,
          log=print) -> dict:
    """Build ``out_dir/nimbus-tiny.qcow2`` and its manifest (replacing both); the
    manifest is returned."""
    started = time.monotonic()
    missing = missing_tools()
    if missing:
        raise BuildError(f"missing tools: {', '.join(missing)} "
                         "(python3 -m deploy.local.hypervisor ensure)")
    _check_busybox()
    out_dir.mkdir(parents=True, exist_ok=True)
    pkg = pkg or kernel.resolve()
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build-") as tmp:
        work = Path(tmp)
        log(f"nimbus-tiny: kernel {pkg.name} {pkg.version}")
        k = kernel.fetch(pkg, out_dir / ".cache", work)
        mods = kernel.modules_in_order(k)
        initrd = work / "initrd.gz"
        initramfs.build_initramfs(BUSYBOX, mods, initrd)
        raw = work / "disk.raw"
        _make_disk(k.vmlinuz, initrd, raw, work)
        qcow2 = work / f"{IMAGE_NAME}.qcow2"
        _run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-c", str(raw), str(qcow2)])
        manifest = {
            "name": IMAGE_NAME,
            "file": qcow2.name,
            "disk_format": "qcow2",
            "kernel_package": pkg.name,
            "kernel_version": pkg.version,
            "kernel_release": k.release,
            "busybox_version": _busybox_version(),
            "modules": [name for name, _ in mods],
            "cmdline": CMDLINE,
            "virtual_size": DISK_MB * 1024 * 1024,
            "size": qcow2.stat().st_size,
            "sha256": _sha256(qcow2),
            "initramfs_size": initrd.stat().st_size,
            "input_hash": input_hash(pkg),
            "build_seconds": 0.0,
        }
        manifest["build_seconds"] = round(time.monotonic() - started, 2)
        os.replace(qcow2, out_dir / qcow2.name)
        tmp_manifest = work / "manifest.json"
        tmp_manifest.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        os.replace(tmp_manifest, out_dir / f"{IMAGE_NAME}.json")
    log(f"nimbus-tiny: built {out_dir / qcow2.name} ({manifest['size']} bytes) "
        f"in {manifest['build_seconds']} s")
    return manifest


def read_manifest(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / f"{IMAGE_NAME}.json").read_text())
    except (OSError, ValueError):
        return None


def ensure_image(out_dir: Path, *, force: bool = False, log=print) -> Path:
    """The path of an up-to-date ``nimbus-tiny.qcow2`` in ``out_dir``, built if it is
    missing, damaged (size differs from the manifest) or made from other inputs.
    Where apt cannot say which kernel is current, an existing image is kept."""
    out_dir = Path(out_dir)
    image = out_dir / f"{IMAGE_NAME}.qcow2"
    manifest = read_manifest(out_dir)
    intact = (manifest is not None and image.is_file()
              and image.stat().st_size == manifest.get("size"))
    if not force:
        try:
            pkg = kernel.resolve()
        except (kernel.KernelError, OSError) as exc:
            if intact:
                log(f"nimbus-tiny: keeping {image} (cannot ask apt for the kernel: {exc})")
                return image
            raise BuildError(f"cannot find the kernel package: {exc}") from exc
        if intact and manifest["input_hash"] == input_hash(pkg):
            return image
        build(out_dir, pkg=pkg, log=log)
    else:
        build(out_dir, log=log)
    return image
