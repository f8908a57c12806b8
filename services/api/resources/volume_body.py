"""The bodies of create volume (4.4.13.3) and create snapshot (4.4.13.6), checked
before anything is read or written, and the size rules that need the source.

The spec lists the fields and is silent on their checks; these are Cinder's
(which Nova's os-volumes passed requests to), with its messages:

* ``size``: a whole number of GB, at least 1, as a JSON number or a string of
  digits (XML gives strings). Required unless ``snapshot_id`` names the source,
  whose size it then defaults to; smaller than the snapshot, smaller than the
  image's ``minDisk`` or than the image itself (its bytes rounded up to GB) is
  400. At most 2**31 - 1 (the quota of gigabytes usually stops it sooner).
* ``display_name``, ``display_description``: strings (or null) of at most 255
  characters (Cinder set no bound; every text this API stores has one).
* ``volume_type``: a type's id or name; empty is none, as in Cinder.
* ``metadata``: string keys and values, bounded like server metadata (the
  rules of ``resources.metadata``; at most the project's maxServerMeta items,
  413 beyond).
* ``availability_zone``: checked against the zones that exist by the handler.
* ``snapshot_id``: a snapshot of the project (a malformed id is 404, as an
  unknown one); ``imageRef``: an image id or a link ending with one (anything
  else is 400 "Invalid imageRef provided.", as in Cinder; empty is none). Not
  both: a volume has one source.

Snapshot: ``volume_id`` is required (a malformed id is 404, like an unknown
volume); ``force`` is a JSON boolean or the string ``true`` or ``false`` in any
case (XML's attribute is a string), anything else 400 (Nova refused what
``bool_from_string(strict=True)`` did not read).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple
from uuid import UUID

from services.api.resources import metadata as meta_rules
from services.api.resources.common import parse_digits, parse_uuid, ref_id
from services.api.resources.server_body import MAX_NAME_LENGTH, check_text
from shared.errors import BadRequest, SnapshotNotFound, VolumeNotFound

MAX_SIZE_GB = 2**31 - 1
"""Largest volume size (the column is a PostgreSQL integer)."""

MAX_TEXT_LENGTH = 255
"""Longest display name or description, in characters."""

GIB = 1024**3


class VolumeRequest(NamedTuple):
    """A create volume body, checked; the sources still to be looked up."""

    size: int | None
    display_name: str | None
    display_description: str | None
    volume_type: str | None
    metadata: dict[str, str]
    availability_zone: str | None
    snapshot_id: UUID | None
    image_id: UUID | None


class SnapshotRequest(NamedTuple):
    volume_id: UUID
    display_name: str | None
    display_description: str | None
    force: bool


def _object(body: dict[str, Any], root: str) -> dict[str, Any]:
    value = body.get(root)
    if not isinstance(value, dict):
        raise BadRequest(f"The request body must hold a '{root}' object.")
    return value


def _optional_text(value: object, field: str, max_len: int = MAX_TEXT_LENGTH) -> str | None:
    return None if value is None else check_text(value, field, max_len)


def size_of(value: object) -> int | None:
    """``size`` as a whole number of GB; None when absent (see :func:`volume_size`)."""
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        number = parse_digits(value, ceiling=MAX_SIZE_GB + 1)
    if number is None or number < 1:
        raise BadRequest(f"Invalid volume size provided for create request: {value!r} (size "
                         "argument must be an integer (or string representation of an "
                         "integer) and greater than zero).")
    if number > MAX_SIZE_GB:
        raise BadRequest(f"Invalid volume size provided for create request: at most "
                         f"{MAX_SIZE_GB} GB.")
    return number


def _metadata(value: object, max_items: int) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("Invalid input for field/attribute metadata: it must be an object "
                         "of strings.")
    items = meta_rules.check_items(value)
    if 0 <= max_items < len(items):
        raise meta_rules.over_limit(max_items)
    return items


def parse_volume(body: dict[str, Any], *, max_meta: int) -> VolumeRequest:
    """The ``volume`` of a create volume body (see the module docstring)."""
    vol = _object(body, "volume")
    snapshot_id = None
    raw_snapshot = vol.get("snapshot_id")
    if raw_snapshot is not None:
        snapshot_id = parse_uuid(raw_snapshot.strip()) if isinstance(raw_snapshot, str) else None
        if snapshot_id is None:
            raise SnapshotNotFound(raw_snapshot)
    image_id = None
    raw_image = vol.get("imageRef")
    if raw_image not in (None, ""):
        image_id = parse_uuid(ref_id(raw_image)) if isinstance(raw_image, (str, int)) else None
        if image_id is None:
            raise BadRequest("Invalid imageRef provided.")
    if snapshot_id is not None and image_id is not None:
        raise BadRequest("A volume has one source: give snapshot_id or imageRef, not both.")
    size = size_of(vol.get("size"))
    if size is None and snapshot_id is None:
        raise BadRequest("Invalid volume size provided for create request: a size is needed "
                         "(size argument must be an integer (or string representation of an "
                         "integer) and greater than zero).")
    volume_type = _optional_text(vol.get("volume_type"), "volume_type", MAX_NAME_LENGTH)
    return VolumeRequest(
        size=size,
        display_name=_optional_text(vol.get("display_name"), "display_name"),
        display_description=_optional_text(vol.get("display_description"),
                                           "display_description"),
        volume_type=volume_type or None,
        metadata=_metadata(vol.get("metadata"), max_meta),
        availability_zone=_optional_text(vol.get("availability_zone"), "availability_zone",
                                         MAX_NAME_LENGTH),
        snapshot_id=snapshot_id,
        image_id=image_id,
    )


def image_floor_gb(size_bytes: int | None) -> int:
    """The GB a volume needs to hold an image of ``size_bytes``."""
    return max(1, math.ceil((size_bytes or 0) / GIB))


def volume_size(requested: int | None, *, snapshot_gb: int | None = None,
                image_min_disk_gb: int | None = None, image_bytes: int | None = None) -> int:
    """The size a volume is made with, from what the body asked and its source.

    Raises:
        BadRequest: too small for its snapshot or image (Cinder's messages).
    """
    size = requested if requested is not None else snapshot_gb
    if size is None:  # parse_volume refuses this already
        raise BadRequest("Invalid volume size provided for create request: a size is needed.")
    if snapshot_gb is not None and size < snapshot_gb:
        raise BadRequest(f"Volume size '{size}'GB cannot be smaller than the snapshot size "
                         f"{snapshot_gb}GB. They must be >= original snapshot size.")
    if image_min_disk_gb is not None and size < image_min_disk_gb:
        raise BadRequest(f"Volume size {size}GB cannot be smaller than the image minDisk size "
                         f"{image_min_disk_gb}GB.")
    if image_bytes is not None and size < image_floor_gb(image_bytes):
        raise BadRequest(f"Size of specified image {image_floor_gb(image_bytes)}GB is larger "
                         f"than volume size {size}GB.")
    return size


def force_of(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadRequest(f"Invalid value '{value}' for force: use true or false.")


def parse_snapshot(body: dict[str, Any]) -> SnapshotRequest:
    """The ``snapshot`` of a create snapshot body (see the module docstring)."""
    snap = _object(body, "snapshot")
    raw_volume = snap.get("volume_id")
    if raw_volume is None or raw_volume == "":
        raise BadRequest("Invalid input for field/attribute volume_id: the volume to snapshot "
                         "is required.")
    volume_id = parse_uuid(raw_volume.strip()) if isinstance(raw_volume, str) else None
    if volume_id is None:
        raise VolumeNotFound(raw_volume)
    return SnapshotRequest(
        volume_id=volume_id,
        display_name=_optional_text(snap.get("display_name"), "display_name"),
        display_description=_optional_text(snap.get("display_description"),
                                           "display_description"),
        force=force_of(snap.get("force")),
    )


def parse_update(fields: dict[str, Any], *, max_meta: int,
                 metadata: bool = True) -> dict[str, Any]:
    """The changes of an update of a volume (or, without ``metadata``, of a
    snapshot): ``display_name``, ``display_description`` (each may be null) and
    ``metadata`` (replacing the old), checked as create checks them. Any other
    field, or none at all, is 400."""
    allowed = {"display_name", "display_description"} | ({"metadata"} if metadata else set())
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise BadRequest(f"Invalid input for field/attribute {unknown[0]}: it cannot be "
                         f"updated (only {', '.join(sorted(allowed))}).")
    if not fields:
        raise BadRequest(f"Nothing to update: give one of {', '.join(sorted(allowed))}.")
    changes: dict[str, Any] = {}
    for field in ("display_name", "display_description"):
        if field in fields:
            changes[field] = _optional_text(fields[field], field)
    if "metadata" in fields:
        changes["metadata"] = _metadata(fields["metadata"], max_meta)
    return changes
