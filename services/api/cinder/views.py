"""Cinder v3's shapes of the volumes, snapshots and types that the compute API
shows in its own (``services.api.views.volumes``).

Choices where Nimbus's volumes differ from Cinder's:

* A volume has at most one attachment (``server_id`` and ``device`` on its row);
  it shows while the volume is ``in-use`` or ``detaching``, as the compute
  API's view shows it. Its ``id`` and ``attachment_id`` are the volume's id,
  which is what the compute API's os-volume_attachments names an attachment
  by (Nova's choice); ``host_name`` and ``attached_at`` are not recorded (null).
* An untyped volume's ``volume_type`` is null (Cinder before its default type).
* ``bootable`` is Cinder's string ("true" made from an image); ``encrypted``
  and ``multiattach`` are always false, ``replication_status`` "disabled",
  ``consistencygroup_id``, ``group_id`` and ``source_volid`` null (no cloning).
* Times are Cinder's: microseconds, no zone, UTC.
* Snapshots carry no metadata (``{}``); their ``progress`` is "100%" once
  available, "0%" before.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.api.cinder.common import is_admin, links
from services.api.views.links import microtime
from services.api.views.volumes import is_attached
from shared.volume_states import SnapshotStatus


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def attachments(row: Any) -> list[dict[str, Any]]:
    if not is_attached(row):
        return []
    vid = str(row["id"])
    return [{"id": vid, "attachment_id": vid, "volume_id": vid,
             "server_id": str(row["server_id"]), "host_name": None, "device": row["device"],
             "attached_at": None}]


def volume_summary(detail: dict[str, Any]) -> dict[str, Any]:
    """The list view (``GET /volumes``) of a detailed view."""
    return {"id": detail["id"], "name": detail["name"], "links": detail["links"]}


def volume(request: web.Request, row: Any) -> dict[str, Any]:
    """The detailed view (show, ``/volumes/detail``, create, update); ``row``
    carries ``volume_type_name``."""
    vid = str(row["id"])
    body = {
        "id": vid,
        "name": row["display_name"],
        "description": row["display_description"],
        "status": row["status"],
        "size": row["size_gb"],
        "availability_zone": row["availability_zone"],
        "bootable": "true" if row["bootable"] else "false",
        "encrypted": False,
        "multiattach": False,
        "volume_type": row["volume_type_name"],
        "snapshot_id": _opt(row["snapshot_id"]),
        "source_volid": None,
        "metadata": dict(row["metadata"]),
        "attachments": attachments(row),
        "created_at": microtime(row["created_at"]),
        "updated_at": microtime(row["updated_at"]),
        "user_id": row["user_id"],
        "os-vol-tenant-attr:tenant_id": row["project_id"],
        "replication_status": "disabled",
        "consistencygroup_id": None,
        "links": links(request, "volumes", vid),
    }
    if is_admin(request):
        # One volume service, one backend: Cinder's host@backend#pool, as it is.
        body["os-vol-host-attr:host"] = "volume@file#file"
        body["os-vol-mig-status-attr:migstat"] = None
        body["os-vol-mig-status-attr:name_id"] = None
    return body


def snapshot(row: Any) -> dict[str, Any]:
    done = row["status"] == SnapshotStatus.AVAILABLE
    return {
        "id": str(row["id"]),
        "name": row["display_name"],
        "description": row["display_description"],
        "volume_id": str(row["volume_id"]),
        "status": row["status"],
        "size": row["size_gb"],
        "created_at": microtime(row["created_at"]),
        "updated_at": microtime(row["updated_at"]),
        "metadata": {},
        "os-extended-snapshot-attributes:progress": "100%" if done else "0%",
        "os-extended-snapshot-attributes:project_id": row["project_id"],
    }


def volume_type(row: Any) -> dict[str, Any]:
    return {"id": str(row["id"]), "name": row["name"], "description": None,
            "is_public": True, "os-volume-type-access:is_public": True,
            "qos_specs_id": None, "extra_specs": dict(row["extra_specs"])}
