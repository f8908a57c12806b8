"""Volume storage backends: the interface (``base``), its implementations, and the
registry the service picks one from by name (``NIMBUS_VOLUME_BACKEND``).

A new backend is one entry here and a class with ``from_context(context)``; it
is imported only when chosen.
"""

from __future__ import annotations

import importlib

import msgspec

from services.volume.backends.base import BackendError, VolumeBackend
from shared.volume_store import VolumeStore


class BackendContext(msgspec.Struct, frozen=True, kw_only=True):
    """What the service gives every backend."""

    store: VolumeStore
    """The volume store (``NIMBUS_VOLUMES_DIR``) the compute hosts share."""
    tool_timeout_s: float
    """Longest a single copy or conversion may run before it counts as failed."""


BACKENDS: dict[str, str] = {
    "file": "services.volume.backends.file:FileBackend",
}
"""Backend name -> ``module:Class``."""


def make_backend(name: str, context: BackendContext) -> VolumeBackend:
    """The backend called ``name``; SystemExit (a bad configuration) for an unknown one."""
    try:
        module, _, cls_name = BACKENDS[name].partition(":")
    except KeyError:
        raise SystemExit(f"unknown volume backend {name!r}; "
                         f"choose one of {', '.join(sorted(BACKENDS))}") from None
    backend: VolumeBackend = getattr(importlib.import_module(module), cls_name).from_context(
        context)
    return backend


__all__ = ["BACKENDS", "BackendContext", "BackendError", "VolumeBackend", "make_backend"]
