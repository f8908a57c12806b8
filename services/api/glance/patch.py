"""``PATCH /v2/images/{id}``'s body: Glance's JSON-patch dialects, read and applied
(pure functions; the handler reads and writes the row).

Two media types, as Glance: ``application/openstack-images-v2.1-json-patch``
(``{"op": "replace", "path": "/name", "value": ...}``, RFC 6902 style) and
``application/openstack-images-v2.0-json-patch`` (``{"replace": "/name",
"value": ...}``); any other is 415 with an ``Accept-Patch`` header.

What may change: ``/name`` (replace or add; the compute API's name rule:
``server_image.image_name``) and the custom properties, which are the compute
API's image metadata (the key and value rules of ``resources.metadata``, the
count capped by ``maxImageMeta``). Glance's faults otherwise: a read-only
property (``id``, ``status``, ``size``...) is 403 "Attribute 'x' is read-only.",
a reserved one (``location``, ``os_glance_*``) 403; replacing or removing a
property that is not there 409, adding one that is there 409 in the v2.0
dialect only; a pointer deeper than one level 400. The other core properties
Glance lets an owner change (``visibility``, ``min_ram``, ``tags``...) have no
compute API counterpart to change; they are 403 here.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from services.api.glance.views import CORE
from services.api.resources.metadata import check_items
from services.api.resources.server_image import image_name
from shared.errors import BadMediaType, BadRequest, Conflict, Forbidden

MEDIA_TYPES = {"application/openstack-images-v2.0-json-patch": 4,
               "application/openstack-images-v2.1-json-patch": 10}
"""Content-Type -> the JSON-schema draft of its operations, as Glance names them."""

OPERATIONS = ("add", "remove", "replace")
READ_ONLY = frozenset({"created_at", "updated_at", "status", "checksum", "size", "virtual_size",
                       "direct_url", "self", "file", "schema", "id", "os_hash_algo",
                       "os_hash_value"})
RESERVED = frozenset({"location", "deleted", "deleted_at"})
RESERVED_PREFIX = "os_glance"


class UnsupportedPatchType(BadMediaType):
    """415, naming the media types a PATCH takes in ``Accept-Patch``, as Glance."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Accept-Patch": ", ".join(sorted(MEDIA_TYPES))}


class Change(msgspec.Struct, frozen=True):
    op: str
    key: str
    """The one-level pointer, decoded (``/name`` -> ``name``)."""
    value: Any = None


def _pointer(pointer: Any) -> str:
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        raise BadRequest(f"Pointer `{pointer}` does not start with \"/\".")
    if re.search("~[^01]", pointer) or pointer.endswith("~"):
        raise BadRequest(f"Pointer `{pointer}` contains \"~\" not part of a recognized "
                         "escape sequence.")
    parts = pointer[1:].split("/")
    if len(parts) != 1 or not parts[0].strip():
        raise BadRequest(f"Invalid JSON pointer for this resource: '{pointer}'")
    return parts[0].replace("~1", "/").replace("~0", "~").strip()


def _operation(raw: dict[str, Any], draft: int) -> tuple[str, Any]:
    if draft == 10:
        op = raw.get("op")
        if op not in OPERATIONS:
            raise BadRequest(f"Invalid operation: `{op}`. It must be one of the following: "
                             f"{', '.join(OPERATIONS)}.")
        if "path" not in raw:
            raise BadRequest("Unable to find 'path' in JSON Schema change")
        return op, raw["path"]
    named = [op for op in OPERATIONS if op in raw]
    if len(named) != 1:
        raise BadRequest('Operation objects must contain exactly one member named "add", '
                         '"remove", or "replace".')
    return named[0], raw[named[0]]


def parse_changes(body: Any, draft: int) -> list[Change]:
    """The operations of a PATCH body; 400/403 as Glance for what it refuses to read."""
    if not isinstance(body, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    changes = []
    for raw in body:
        if not isinstance(raw, dict):
            raise BadRequest("Operations must be JSON objects.")
        op, pointer = _operation(raw, draft)
        key = _pointer(pointer)
        if key in READ_ONLY:
            raise Forbidden(f"Attribute '{key}' is read-only.")
        if key in RESERVED or key.startswith(RESERVED_PREFIX):
            raise Forbidden(f"Attribute '{key}' is reserved.")
        if key in CORE and key != "name":
            raise Forbidden(f"Attribute '{key}' cannot be changed here: it follows the "
                            "compute API's image (only the name and custom properties can).")
        if op != "remove" and "value" not in raw:
            raise BadRequest(f'Operation "{op}" requires a member named "value".')
        changes.append(Change(op, key, raw.get("value")))
    return changes


def apply(name: str, metadata: dict[str, str], changes: list[Change], draft: int
          ) -> tuple[str, dict[str, str]]:
    """The name and metadata after ``changes``, in order (nothing is written on a fault)."""
    meta = dict(metadata)
    for change in changes:
        key = change.key
        if key == "name":
            if change.op == "remove":
                raise Forbidden("Property name may not be removed.")
            if not isinstance(change.value, str):
                raise BadRequest(f"Invalid value for name: {change.value!r} is not a string.")
            name = image_name(change.value, "Image name must not be blank.")
        elif change.op == "remove":
            if key not in meta:
                raise Conflict(f"Property {key} does not exist.")
            del meta[key]
        else:
            if change.op == "replace" and key not in meta:
                raise Conflict(f"Property {key} does not exist.")
            if change.op == "add" and draft == 4 and key in meta:
                raise Conflict(f"Property {key} already present.")
            meta.update(check_items({key: change.value}))
    return name, meta
