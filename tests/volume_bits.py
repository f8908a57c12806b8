"""Reading and writing the bits of volume files in tests, with QEMU's own tools
(``qemu-img``, ``qemu-io``), as a guest or a host would see them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

GIB = 1024 ** 3


def info(path: Path, fmt: str = "qcow2") -> dict:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", "-f", fmt, str(path)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def virtual_size(path: Path, fmt: str = "qcow2") -> int:
    return int(info(path, fmt)["virtual-size"])


def write_pattern(path: Path, pattern: int, offset: int = 0, length: str = "1M",
                  fmt: str = "qcow2") -> None:
    """Write ``length`` bytes of ``pattern`` at ``offset`` into the disk ``path``."""
    subprocess.run(["qemu-io", "-f", fmt, "-c", f"write -P {pattern:#x} {offset} {length}",
                    str(path)], check=True, capture_output=True)


def holds_pattern(path: Path, pattern: int, offset: int = 0, length: str = "1M",
                  fmt: str = "qcow2") -> bool:
    """Whether the disk ``path`` holds ``length`` bytes of ``pattern`` at ``offset``."""
    proc = subprocess.run(["qemu-io", "-r", "-U", "-f", fmt, "-c",
                           f"read -P {pattern:#x} {offset} {length}", str(path)],
                          capture_output=True, text=True)
    return proc.returncode == 0 and "verification failed" not in proc.stdout + proc.stderr


def raw_image(path: Path, size_bytes: int, pattern: int | None = None) -> Path:
    """A raw disk of ``size_bytes``, its first MiB filled with ``pattern`` if given."""
    with path.open("wb") as fh:
        fh.truncate(size_bytes)
    if pattern is not None:
        write_pattern(path, pattern, fmt="raw")
    return path
