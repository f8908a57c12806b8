"""The guest's initramfs: a gzip'd cpio archive (``newc``) written in Python.

Written here rather than with ``cpio`` so that it needs no root (the console
device node is an archive entry, not a file made with ``mknod``) and so that the
same inputs give the same bytes (every time stamp is 0, owners are root).

Contents::

    /init                       init.sh (the whole guest OS)
    /bin/busybox, /bin/sh       busybox-static; init installs the other applets
    /dev/console                so the kernel can give init a console
    /lib/modules/<name>.ko      the modules, uncompressed
    /etc/nimbus/modules         their names, in the order init loads them
    /etc/acpi/PWRF/00000080     what busybox acpid runs on the power button
"""

from __future__ import annotations

import gzip
import stat
from pathlib import Path

HERE = Path(__file__).resolve().parent
INIT = HERE / "init.sh"
POWER_BUTTON = HERE / "power_button.sh"


class _Cpio:
    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._ino = 0x1000
        self._dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"",
               rdev: tuple[int, int] = (0, 0)) -> None:
        self._ino += 1
        raw = name.encode() + b"\x00"
        fields = (self._ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0, len(data),
                  0, 0, rdev[0], rdev[1], len(raw), 0)
        head = b"070701" + b"".join(b"%08X" % f for f in fields)
        self._parts.append(head + raw + b"\x00" * (-(len(head) + len(raw)) % 4))
        self._parts.append(data + b"\x00" * (-len(data) % 4))

    def dir(self, name: str) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self._dirs:
                self._dirs.add(d)
                self._entry(d, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        name = name.strip("/")
        if "/" in name:
            self.dir(name.rsplit("/", 1)[0])
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name.strip("/"), stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int) -> None:
        self._entry(name.strip("/"), stat.S_IFCHR | 0o600, rdev=(major, minor))

    def bytes(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return b"".join(self._parts)


def build_initramfs(busybox: Path, modules: list[tuple[str, bytes]], out: Path) -> None:
    """Write the gzip'd archive to ``out``; ``modules`` in load order."""
    a = _Cpio()
    for d in ("bin", "dev", "etc/nimbus", "lib/modules", "proc", "sys", "run", "tmp"):
        a.dir(d)
    a.chardev("dev/console", 5, 1)
    a.file("bin/busybox", busybox.read_bytes(), 0o755)
    a.symlink("bin/sh", "busybox")
    a.file("init", INIT.read_bytes(), 0o755)
    a.file("etc/acpi/PWRF/00000080", POWER_BUTTON.read_bytes(), 0o755)
    for name, data in modules:
        a.file(f"lib/modules/{name}.ko", data)
    a.file("etc/nimbus/modules", "".join(f"{name}\n" for name, _ in modules).encode())
    out.write_bytes(gzip.compress(a.bytes(), compresslevel=9, mtime=0))
