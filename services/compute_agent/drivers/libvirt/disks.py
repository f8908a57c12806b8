"""A guest's disk files, made with ``qemu-img`` (run as asyncio subprocesses).

The root disk is a qcow2 overlay whose backing file is the image in the image
store: creating it copies nothing, and the image is only read. The tool's own
output names host paths: it goes to the log, and the error says what failed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import structlog

from services.compute_agent.drivers.base import DriverError

log = structlog.get_logger(__name__)

GIB = 1024 ** 3
TOOL_TIMEOUT_S = 600.0


async def _qemu_img(*args: str, failed: str) -> bytes:
    try:
        proc = await asyncio.create_subprocess_exec(
            "qemu-img", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        log.error("qemu_img.missing")
        raise DriverError(f"{failed} The host has no disk image tool.") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TOOL_TIMEOUT_S)
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        log.error("qemu_img.failed", argv=["qemu-img", *args], returncode=proc.returncode,
                  stderr=err.decode(errors="replace")[-4000:])
        raise DriverError(failed)
    return out


async def virtual_size(image: Path, disk_format: str) -> int:
    """The size the image's disk has for a guest (bytes)."""
    out = await _qemu_img("info", "--output=json", "-f", disk_format, str(image),
                          failed="The server's image could not be read.")
    return int(json.loads(out)["virtual-size"])


async def create_overlay(image: Path, disk_format: str, dest: Path, size_gb: int, *,
                         fake: bool = False) -> None:
    """Make ``dest``, a qcow2 overlay of ``image`` of ``size_gb`` GiB (the image's own
    size when that is larger, or when ``size_gb`` is 0). ``fake``: an empty file."""
    if not image.is_file():
        log.error("disk.image_missing", image=str(image))
        raise DriverError("The server's image has no data on this host.")
    if fake:
        dest.write_bytes(b"")
        return
    size = max(size_gb * GIB, await virtual_size(image, disk_format))
    await _qemu_img("create", "-q", "-f", "qcow2", "-F", disk_format, "-b", str(image),
                    str(dest), str(size), failed="The server's disk could not be created.")


async def convert(src: Path, dest: Path, *, fake: bool = False) -> None:
    """Copy the disk ``src`` (with its backing chain) into one standalone qcow2 file.
    ``-U``: the running guest's QEMU holds the image lock; the caller paused it."""
    if fake:
        dest.write_bytes(src.read_bytes())
        return
    await _qemu_img("convert", "-U", "-O", "qcow2", str(src), str(dest),
                    failed="The server's disk could not be copied.")
