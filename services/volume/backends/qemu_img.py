"""``qemu-img``, run as an asyncio subprocess, for the file backend.

The tool's output names host paths and says things no user should read: it
goes to the log, and a failure raises :class:`BackendError` with the sentence
the caller chose (plus "The volume store is full." where that is the cause).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import structlog

from services.volume.backends.base import BackendError

log = structlog.get_logger(__name__)

STORE_FULL = "The volume store is full."


async def run(*args: str, failed: str, timeout_s: float) -> bytes:
    """Run ``qemu-img args``; its stdout. BackendError(``failed`` ...) if it fails,
    cannot be run, or runs longer than ``timeout_s`` (it is killed then)."""
    argv = ["qemu-img", *args]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        log.error("qemu_img.missing")
        raise BackendError(f"{failed} The volume service has no disk image tool.") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except (TimeoutError, asyncio.CancelledError) as exc:
        proc.kill()
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        log.error("qemu_img.timed_out", argv=argv, timeout_s=timeout_s)
        raise BackendError(f"{failed} It did not finish within {timeout_s:g} s.") from None
    if proc.returncode != 0:
        stderr = err.decode(errors="replace")
        log.error("qemu_img.failed", argv=argv, returncode=proc.returncode, stderr=stderr[-4000:])
        full = "No space left on device" in stderr or "Disk quota exceeded" in stderr
        raise BackendError(f"{failed} {STORE_FULL}" if full else failed)
    return out


async def info(path: Path, disk_format: str, *, failed: str, timeout_s: float,
               force_share: bool = False) -> dict[str, Any]:
    """``qemu-img info`` of ``path`` read as ``disk_format`` (never probed: a raw
    file that looks like qcow2 must not be read as one). ``force_share``: the
    file may be open in a running guest's QEMU."""
    args = ["info", "--output=json", "-f", disk_format]
    if force_share:
        args.append("-U")
    out = await run(*args, str(path), failed=failed, timeout_s=timeout_s)
    try:
        parsed: dict[str, Any] = json.loads(out)
        int(parsed["virtual-size"])
    except (ValueError, KeyError, TypeError):
        log.error("qemu_img.unreadable_info", path=str(path))
        raise BackendError(failed) from None
    return parsed


def refers_elsewhere(details: dict[str, Any]) -> bool:
    """Whether an image's disk reads other files (a backing file, a qcow2 external
    data file): reading it would read whatever those name on this host."""
    data = (details.get("format-specific") or {}).get("data") or {}
    return bool(details.get("backing-filename") or details.get("full-backing-filename")
                or data.get("data-file"))
