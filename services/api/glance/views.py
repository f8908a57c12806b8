"""An ``images`` row as Glance v2 shows an image.

Glance puts an image's custom properties at the top level beside its core
properties; here the custom properties are the compute API's image metadata
(a snapshot's ``image_type``, ``instance_uuid``, ``base_image_ref``... as
``server_image.snapshot_metadata`` writes them). A metadata key that names a
core property (``status``, ``min_ram``...) is not shown: the core value wins,
so that every image validates against ``schemas.image_schema``.

Statuses, in Glance's lower case:

* ACTIVE is ``active``; SAVING (the agent is copying the disk) is ``saving``.
* ERROR is ``error``, which Glance itself never answers. Nimbus's snapshot
  that failed ends ERROR (and deleted, as Nova deletes a failed snapshot's
  image). Glance's own failure status, ``killed``, would make the waiters of
  ``openstack server image create --wait`` (osc-lib's ``wait_for_status``)
  and of openstacksdk (``wait_for_image``, ``wait_for_status``) poll until
  their timeout: they stop on ``active`` or on ``error`` only. So the image
  endpoint shows a failed snapshot, by id, as ``error``, and the schema's
  status enum has ``error`` for glanceclient's validation.
* DELETED (deleted by its owner) is never shown: such an image is 404.
"""

from __future__ import annotations

from typing import Any

from services.api.views.links import isotime

STATUSES = ("queued", "saving", "active", "killed", "deleted", "uploading", "importing",
            "pending_delete", "deactivated", "error")
"""Glance's statuses, and Nimbus's ``error``."""

_STATUS = {"ACTIVE": "active", "SAVING": "saving", "ERROR": "error", "DELETED": "deleted"}

STATUS_FILTERS = {"active": ("ACTIVE",), "saving": ("SAVING",), "queued": ("SAVING",),
                  "error": ("ERROR",)}
"""A Glance ``status`` filter value -> the Nimbus statuses it selects (none: nothing)."""

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso",
                "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")

CONTAINER_FORMAT = "bare"
"""Every Nimbus image is a bare disk."""

CORE = frozenset({
    "id", "name", "status", "visibility", "protected", "os_hidden", "checksum", "os_hash_algo",
    "os_hash_value", "owner", "size", "virtual_size", "container_format", "disk_format",
    "created_at", "updated_at", "tags", "min_ram", "min_disk", "self", "file", "schema",
    "direct_url", "locations", "stores",
})
"""Glance's core properties: never custom properties (shown from the row, not metadata)."""


def glance_status(status: str) -> str:
    return _STATUS.get(status, status.lower())


def image(row: Any) -> dict[str, Any]:
    """The image as ``GET /v2/images/{id}`` answers it."""
    view: dict[str, Any] = {k: v for k, v in dict(row["metadata"]).items() if k not in CORE}
    saving = row["status"] == "SAVING"
    size = None if saving else row["size_bytes"]  # Glance: no size before the data is there
    image_id = str(row["id"])
    view.update({
        "id": image_id,
        "name": row["name"],
        "status": glance_status(row["status"]),
        "visibility": row["visibility"],
        "protected": False,
        "os_hidden": False,
        "owner": row["owner_project_id"],
        "min_disk": row["min_disk_gb"],
        "min_ram": row["min_ram_mb"],
        "size": size,
        # A raw disk's virtual size is its size; another format's is not known.
        "virtual_size": size if row["disk_format"] == "raw" else None,
        "disk_format": row["disk_format"],
        "container_format": CONTAINER_FORMAT,
        "checksum": None,
        "os_hash_algo": None,
        "os_hash_value": None,
        "tags": [],
        "created_at": isotime(row["created_at"]),
        "updated_at": isotime(row["updated_at"]),
        "self": f"/v2/images/{image_id}",
        "file": f"/v2/images/{image_id}/file",
        "schema": "/v2/schemas/image",
    })
    return view
