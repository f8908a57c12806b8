"""The guest's kernel: Debian's, downloaded with apt and unpacked without installing it.

:func:`resolve` asks apt which versioned package the metapackage
(``linux-image-cloud-amd64``) depends on; :func:`fetch` downloads that ``.deb`` into a
cache directory (``apt-get download``) and unpacks it (``dpkg-deb -x``);
:func:`modules_in_order` picks the modules the guest needs and orders them so
each comes after the modules it depends on. Debian's kernel package ships no
``modules.dep`` (``depmod`` runs at install), so the order is read from each
module's own ``depends=`` field (its ``.modinfo`` section).

Standard library only.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

METAPACKAGE = "linux-image-cloud-amd64"
"""Debian's kernel for virtual machines. Measured against ``linux-image-amd64``
(6.1.0-57, TCG, same initramfs, three boots each, QEMU start to ``ready``):
4.3-5.6 s against 6.8-7.5 s (its LZ4-compressed kernel unpacks faster than the
generic one's XZ), a 27 MB download against 71 MB, but a 13.5 MB image against
10.4 MB (LZ4 compresses less). Boot time is paid by every test that boots a guest."""

WANTED_MODULES = (
    "virtio_pci", "virtio_blk", "virtio_net",   # the disks and NICs
    "isofs",                                    # the config drive
    "ata_piix", "sr_mod",                       # ... when it is an IDE CD-ROM (pc)
    "vfat", "nls_cp437", "nls_ascii", "nls_iso8859-1", "nls_utf8",  # the boot disk
    "button", "evdev",                          # the ACPI power button, for acpid
)
"""What the guest loads; their dependencies come along."""
OPTIONAL_MODULES = ("ahci",)
"""Loaded when the kernel has them: ``ahci`` reads a SATA CD-ROM (q35's), but the
cloud kernel has no AHCI driver, so there a config drive must be a virtio disk
or an IDE CD-ROM (``pc``)."""


class KernelError(RuntimeError):
    """The kernel package could not be found, fetched or unpacked."""


@dataclass(frozen=True)
class KernelPackage:
    name: str
    """``linux-image-6.1.0-57-amd64``."""
    version: str
    """The Debian version, ``6.1.192-3``."""


@dataclass(frozen=True)
class Kernel:
    package: KernelPackage
    release: str
    """``uname -r`` in the guest, ``6.1.0-57-amd64``."""
    vmlinuz: Path
    config: Path
    modules_dir: Path


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 600) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if proc.returncode != 0:
        raise KernelError(f"{' '.join(argv)} failed ({proc.returncode}): "
                          f"{proc.stderr.strip()[-2000:]}")
    return proc.stdout


def _apt_update() -> None:
    # The package lists are the system's: root updates them, anyone else through sudo.
    argv = ["apt-get", "update", "-q"]
    if os.geteuid() != 0 and shutil.which("sudo"):
        argv = ["sudo", "-n", *argv]
    _run(argv, timeout=900)


def resolve(metapackage: str = METAPACKAGE) -> KernelPackage:
    """The versioned kernel package ``metapackage`` depends on (apt's lists are
    refreshed once if they do not know it)."""
    for attempt in (1, 2):
        try:
            out = _run(["apt-cache", "show", "--no-all-versions", metapackage])
            m = re.search(r"^Depends:.*?\b(linux-image-[0-9][^\s,(]*)\s*\(=\s*([^)\s]+)\)",
                          out, re.MULTILINE)
            if m:
                return KernelPackage(name=m.group(1), version=m.group(2))
            raise KernelError(f"{metapackage} depends on no versioned linux-image package")
        except KernelError:
            if attempt == 2:
                raise
            _apt_update()
    raise AssertionError("unreachable")


def fetch(pkg: KernelPackage, cache: Path, workdir: Path) -> Kernel:
    """Download (once, into ``cache``) and unpack ``pkg`` under ``workdir``."""
    cache.mkdir(parents=True, exist_ok=True)
    deb = cache / f"{pkg.name}_{pkg.version.replace(':', '%3a')}_amd64.deb"
    if not deb.is_file():
        for old in cache.glob("linux-image-*.deb"):
            old.unlink()  # an older kernel: the cache keeps one
        try:
            _run(["apt-get", "download", f"{pkg.name}={pkg.version}"], cwd=cache)
        except KernelError:
            _apt_update()  # lists too old to know the file: refresh once
            _run(["apt-get", "download", f"{pkg.name}={pkg.version}"], cwd=cache)
        if not deb.is_file():
            found = sorted(cache.glob(f"{pkg.name}_*.deb"))
            if not found:
                raise KernelError(f"apt-get download left no {pkg.name} package in {cache}")
            deb = found[-1]
    root = workdir / "kernel"
    _run(["dpkg-deb", "-x", str(deb), str(root)])
    vmlinuz = sorted((root / "boot").glob("vmlinuz-*"))
    if len(vmlinuz) != 1:
        raise KernelError(f"{deb.name} holds {len(vmlinuz)} kernels, expected one")
    release = vmlinuz[0].name.removeprefix("vmlinuz-")
    return Kernel(package=pkg, release=release, vmlinuz=vmlinuz[0],
                  config=root / "boot" / f"config-{release}",
                  modules_dir=root / "lib" / "modules" / release)


def _module_files(kernel: Kernel) -> dict[str, Path]:
    """Module name (``nls_iso8859-1``, ``virtio_pci``) -> its file."""
    files: dict[str, Path] = {}
    for f in (kernel.modules_dir / "kernel").rglob("*.ko*"):
        name = f.name.split(".ko")[0]
        files[name] = f
        files.setdefault(name.replace("-", "_"), f)
    return files


def _builtin(kernel: Kernel) -> set[str]:
    listing = kernel.modules_dir / "modules.builtin"
    if not listing.is_file():
        return set()
    return {Path(line).name.split(".ko")[0].replace("-", "_")
            for line in listing.read_text().split()}


def module_bytes(path: Path) -> bytes:
    """A module's ELF bytes (``.ko.xz`` is decompressed: busybox insmod loads plain ``.ko``)."""
    data = path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if path.name.endswith(".ko"):
        return data
    raise KernelError(f"cannot decompress {path.name} with the standard library")


def _depends(data: bytes) -> list[str]:
    m = re.search(rb"(?:^|\x00)depends=([^\x00]*)\x00", data)
    return [d for d in m.group(1).decode().split(",") if d] if m else []


def modules_in_order(kernel: Kernel, wanted: tuple[str, ...] = WANTED_MODULES,
                     optional: tuple[str, ...] = OPTIONAL_MODULES) -> list[tuple[str, bytes]]:
    """``(name, ELF bytes)`` for each wanted module that is not built in (and each
    optional one the kernel has), and their dependencies, each after what it
    depends on."""
    files, builtin = _module_files(kernel), _builtin(kernel)
    ordered: list[tuple[str, bytes]] = []
    done: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        key = name.replace("-", "_")
        if key in done or key in builtin:
            return
        if name in chain:
            raise KernelError(f"module dependency cycle: {' -> '.join((*chain, name))}")
        path = files.get(name) or files.get(key)
        if path is None:
            raise KernelError(f"kernel {kernel.release} has no module {name}, nor built in")
        data = module_bytes(path)
        for dep in _depends(data):
            visit(dep, (*chain, name))
        done.add(key)
        ordered.append((path.name.split(".ko")[0], data))

    for name in wanted:
        visit(name, ())
    for name in optional:
        if name in files or name.replace("-", "_") in files:
            visit(name, ())
    return ordered


def have_tools() -> list[str]:
    """The tools this module needs that are missing."""
    return [t for t in ("apt-cache", "apt-get", "dpkg-deb") if shutil.which(t) is None]
