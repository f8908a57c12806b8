"""The volume service's settings: the shared sections plus ``[volume]``, the volume
store (``[volumes]``) and the image store (``[images]``, read for volumes made
from an image).

Built once in ``__main__`` with :func:`shared.config.load`; every ``[volume]``
field can also be set as ``NIMBUS_VOLUME_<FIELD>`` (``NIMBUS_VOLUME_BACKEND``),
the stores' as ``NIMBUS_VOLUMES_DIR`` and ``NIMBUS_IMAGES_DIR``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from shared.config import (
    AmqpSettings,
    DatabaseSettings,
    HealthSettings,
    LogSettings,
    ShutdownSettings,
)
from shared.image_store import ImageStoreSettings
from shared.volume_store import VolumeStoreSettings

DEFAULT_TYPES: dict[str, dict[str, str]] = {
    "standard": {},
    "ssd": {"volume_backend_name": "file"},
}

VolumeTypes = dict[str, dict[str, str]]


class VolumeSettings(msgspec.Struct, frozen=True, kw_only=True):
    backend: str = "file"
    """The storage backend (``services.volume.backends.BACKENDS``): ``file``, one
    qcow2 file per volume and snapshot in the volume store. Changing it on a
    live deployment strands the volumes the old one made."""
    types: VolumeTypes | str = msgspec.field(default_factory=lambda: dict(DEFAULT_TYPES))
    """The volume types users may pick (``os-volume-types``): name -> extra specs
    (string -> string). Written at start; a type no longer listed stays (volumes
    may name it), a listed one gets the extra specs given here. In TOML a table
    (``[volume.types] standard = {}``); in the environment JSON
    (``NIMBUS_VOLUME_TYPES='{"standard": {}}'``)."""
    transient_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    """A volume or snapshot still creating, attaching, detaching or deleting this
    many seconds after the status began ends as the status table says
    (``shared.volume_states``: error, available, in-use, error_deleting) with a
    reason: its message or its worker was lost. It is also the longest one copy
    or conversion may run. Keep it well above the slowest copy (a large image
    into a volume); lower frees stuck volumes sooner."""
    sweep_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    """Seconds between sweeps for stuck volumes and snapshots (``sweep.py``); each
    is a few cheap queries."""
    service_down_time_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    """A compute host silent for this long counts as down (``shared.db.hosts``):
    an attach or detach waiting on it ends at once. Keep it equal to the
    scheduler's and the API's."""

    def __post_init__(self) -> None:
        # A typo fails at start (shared.config reports it), not at the first use.
        self.volume_types()

    def volume_types(self) -> VolumeTypes:
        """:attr:`types`, decoded."""
        raw = self.types
        try:
            types = msgspec.json.decode(raw, type=VolumeTypes) if isinstance(raw, str) else raw
        except msgspec.DecodeError as exc:
            raise ValueError(f"types must be a JSON object of name -> extra specs: {exc}") \
                from None
        if not types or any(not name.strip() or len(name) > 255 for name in types):
            raise ValueError("types needs at least one name, each 1 to 255 characters")
        return types


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database: DatabaseSettings = DatabaseSettings()
    amqp: AmqpSettings = AmqpSettings()
    log: LogSettings = LogSettings()
    health: HealthSettings = HealthSettings()
    shutdown: ShutdownSettings = ShutdownSettings()
    volume: VolumeSettings = VolumeSettings()
    volumes: VolumeStoreSettings = VolumeStoreSettings()
    images: ImageStoreSettings = ImageStoreSettings()
