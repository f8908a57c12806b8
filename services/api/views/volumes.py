"""Volume, snapshot and volume type views (section 4.4.13, extension os-volumes).

The spec shows volumes in two shapes, and we follow each where it applies:

* List, list detail and show (4.4.13.1, .2, .4) use Nova's camelCase view,
  exactly as its examples: ``attachments`` is ``[{}]`` for a volume attached
  nowhere (Nova's quirk), ``createdAt`` has microseconds and no zone, an
  untyped volume's ``volumeType`` is the string ``"None"`` (what Cinder sent
  Nova for a volume without a type), not null.
* Create (4.4.13.3) answers with the block storage API's snake_case view, as
  its example shows (``display_name``, ``created_at`` ending in ``Z``, and
  ``attachments: []``). The spec contradicts itself here: Nova answered a
  create with the same camelCase view as show, and the create example was
  copied from the block storage documentation; we follow the spec's own,
  most detailed, create example, and add its XML example's ``status``.

Snapshots have only the snake_case view (4.4.13.6-9), in every operation.
Volume types are Nova's (os-volume-types, which the spec lists in 4.1.13
without an example): ``{"id", "name", "extra_specs"}``.
"""

from __future__ import annotations

from typing import Any

from services.api.views.links import isotime, microtime
from shared.volume_states import VolumeStatus

# A volume shows its attachment once the attach is done, and until the detach
# is (Cinder's attach_status "attached", which Nova read).
_ATTACHED = (VolumeStatus.IN_USE, VolumeStatus.DETACHING)

NO_TYPE = "None"
"""``volumeType`` (and ``volume_type``) of a volume created without a type."""


def _opt_id(value: Any) -> str | None:
    return None if value is None else str(value)


def is_attached(row: Any) -> bool:
    """Whether the volume shows its attachment (to ``row["server_id"]``)."""
    return row["status"] in _ATTACHED and row["server_id"] is not None


def attachments(row: Any) -> list[dict[str, Any]]:
    """Nova's attachments of a volume: its one attachment, or ``[{}]``."""
    if not is_attached(row):
        return [{}]
    vid = str(row["id"])
    # Nova used the volume's id as the attachment's.
    return [{"device": row["device"], "id": vid, "serverId": str(row["server_id"]),
             "volumeId": vid}]


def volume(row: Any) -> dict[str, Any]:
    """The camelCase view of list, detail and show; ``row`` carries
    ``volume_type_name`` (the type's name, None when untyped)."""
    return {
        "attachments": attachments(row),
        "availabilityZone": row["availability_zone"],
        "createdAt": microtime(row["created_at"]),
        "displayDescription": row["display_description"],
        "displayName": row["display_name"],
        "id": str(row["id"]),
        "metadata": dict(row["metadata"]),
        "size": row["size_gb"],
        "snapshotId": _opt_id(row["snapshot_id"]),
        "status": row["status"],
        "volumeType": row["volume_type_name"] or NO_TYPE,
    }


def created(row: Any, type_name: str | None) -> dict[str, Any]:
    """The snake_case view of create (4.4.13.3), with ``status``.

    ``volume_type`` is the type's name, as show has it and the block storage
    API answered (the spec's example echoes an id it was given: written by
    hand, it cannot tell the two apart); ``"None"`` when untyped, as in show.
    """
    return {
        "id": str(row["id"]),
        "display_name": row["display_name"],
        "display_description": row["display_description"],
        "status": row["status"],
        "size": row["size_gb"],
        "volume_type": type_name or NO_TYPE,
        "metadata": dict(row["metadata"]),
        "availability_zone": row["availability_zone"],
        "snapshot_id": _opt_id(row["snapshot_id"]),
        "attachments": [],
        "created_at": isotime(row["created_at"]),
    }


def snapshot(row: Any) -> dict[str, Any]:
    """A snapshot, as every snapshot example of 4.4.13.6-9 shows it."""
    return {
        "id": str(row["id"]),
        "display_name": row["display_name"],
        "display_description": row["display_description"],
        "volume_id": str(row["volume_id"]),
        "status": row["status"],
        "size": row["size_gb"],
        "created_at": isotime(row["created_at"]),
    }


def volume_type(row: Any) -> dict[str, Any]:
    return {"id": str(row["id"]), "name": row["name"], "extra_specs": dict(row["extra_specs"])}
