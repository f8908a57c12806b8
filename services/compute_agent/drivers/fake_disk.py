"""The fake host's guest disks: what each guest was given, and how big a copy of it is.

With a state directory, the fake host writes what each guest was given where a
real host keeps its disk images, so tests (and curious developers) can check
that injected files, user data and the config drive reached the hypervisor::

    <state_dir>/<host>/<server_id>/
        user_data                 the decoded user data, if any
        files/<path>              each injected file (no config drive)
        config_drive/meta.js      the server metadata as JSON (with a config drive)
        config_drive/files/<path> each injected file (with a config drive)
        config_drive/public_key   the key pair's public key, if any
        config_drive/user_data    the user data, if any

The directory appears before the guest boots (as a disk is prepared before
boot) and goes with the guest on destroy or on a failed spawn; a rebuild
writes it again for the new disk. The hypervisor's own record of the guest
(its state and console) lives apart, in ``fake_host``.
"""

from __future__ import annotations

import json
import posixpath
import shutil
from pathlib import Path

from services.compute_agent.drivers.base import DriverError, GuestSpec
from shared.contracts.compute import InjectedFile


def guest_relative_path(path: str) -> str:
    """An injected file's path inside the guest's file system, made safe to join.

    The path is taken from the guest's root, as the guest would resolve it:
    ``..`` cannot climb above the root (``/../../etc/x`` is ``etc/x``), and
    empty and ``.`` components go. Raises DriverError for a path that names no
    file (``/``, ``..``) or holds a NUL byte.
    """
    if "\x00" in path:
        raise DriverError(f"injected file path {path!r} holds a NUL byte")
    relative = posixpath.normpath(posixpath.join("/", path)).lstrip("/")
    if not relative or relative == ".":
        raise DriverError(f"injected file path {path!r} names no file")
    return relative


def write_disk(target: Path, spec: GuestSpec) -> None:
    """Write what the guest was given under ``target`` (blocking; run in a thread)."""
    shutil.rmtree(target, ignore_errors=True)  # a leftover of an earlier run, or the old disk
    target.mkdir(parents=True)
    config = spec.config
    if config.user_data is not None:
        (target / "user_data").write_bytes(config.user_data)
    if not config.config_drive:
        _write_files(target / "files", config.files)
        return
    root = target / "config_drive"
    root.mkdir()
    (root / "meta.js").write_text(json.dumps(config.metadata, sort_keys=True))
    _write_files(root / "files", config.files)
    if config.public_keys:
        (root / "public_key").write_text(next(iter(config.public_keys.values())))
    if config.user_data is not None:
        (root / "user_data").write_bytes(config.user_data)


def _write_files(root: Path, files: tuple[InjectedFile, ...]) -> None:
    for injected in files:
        dest = root / guest_relative_path(injected.path)
        # guest_relative_path already keeps the path below the root; this holds
        # even if that logic ever changes.
        if not dest.resolve().is_relative_to(root.resolve()):
            raise DriverError(f"injected file path {injected.path!r} leaves the guest")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(injected.contents)
        except OSError as exc:  # e.g. one file's path is another's directory
            raise DriverError(f"cannot inject {injected.path!r}: {exc.strerror}") from None


def disk_usage(spec: GuestSpec, console_chars: int) -> int:
    """Bytes a snapshot of the guest's root disk takes: its image, what was written
    into it (files, user data) and what the guest wrote (its logs, which grow
    faster than its ``console_chars`` of console), in 64 KiB blocks, never more
    than the flavor's disk."""
    written = sum(len(f.contents) for f in spec.config.files) + len(spec.config.user_data or b"")
    written += console_chars * 64
    size = (spec.image.size_bytes if spec.image is not None else 0) + written
    size = -(-size // 65536) * 65536
    if spec.flavor.disk_gb:
        size = min(size, spec.flavor.disk_gb * 2**30)
    return size
