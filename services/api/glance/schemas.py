"""The JSON-schema documents of ``/v2/schemas/image`` and ``/v2/schemas/images``.

python-glanceclient fetches them and validates every image it reads or
changes against them (with warlock); Rally does the same. They follow Glance's
(``glance.api.v2.images.get_schema``, a "permissive" schema: custom properties
are any other string keys) and describe exactly what ``views.image`` answers,
with one difference: ``status`` also allows ``error``, Nimbus's failed
snapshot (see ``views.STATUSES``). The unit tests validate every view against
them.
"""

from __future__ import annotations

from typing import Any

from services.api.glance.views import CONTAINER_FORMATS, DISK_FORMATS, STATUSES

_UUID = ("^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
         "-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$")


def _nullable(kind: str, description: str, **more: Any) -> dict[str, Any]:
    return {"type": ["null", kind], "description": description, **more}


def _read_only(kind: Any, description: str, **more: Any) -> dict[str, Any]:
    return {"type": kind, "readOnly": True, "description": description, **more}


PROPERTIES: dict[str, dict[str, Any]] = {
    "id": {"type": "string", "description": "An identifier for the image", "pattern": _UUID},
    "name": _nullable("string", "Descriptive name for the image", maxLength=255),
    "status": _read_only("string", "Status of the image", enum=list(STATUSES)),
    "visibility": {"type": "string", "description": "Scope of image accessibility",
                   "enum": ["community", "public", "private", "shared"]},
    "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
    "os_hidden": {"type": "boolean",
                  "description": "If true, image will not appear in default image list response."},
    "checksum": _read_only(["null", "string"], "md5 hash of image contents.", maxLength=32),
    "os_hash_algo": _read_only(["null", "string"], "Algorithm to calculate the os_hash_value",
                               maxLength=64),
    "os_hash_value": _read_only(["null", "string"], "Hexdigest of the image contents using "
                                "the algorithm specified by the os_hash_algo", maxLength=128),
    "owner": _nullable("string", "Owner of the image", maxLength=255),
    "size": _read_only(["null", "integer"], "Size of image file in bytes"),
    "virtual_size": _read_only(["null", "integer"], "Virtual size of image in bytes"),
    "container_format": _nullable("string", "Format of the container",
                                  enum=[None, *CONTAINER_FORMATS]),
    "disk_format": _nullable("string", "Format of the disk", enum=[None, *DISK_FORMATS]),
    "created_at": _read_only("string", "Date and time of image registration"),
    "updated_at": _read_only("string", "Date and time of the last image modification"),
    "tags": {"type": "array", "description": "List of strings related to the image",
             "items": {"type": "string", "maxLength": 255}},
    "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
    "min_disk": {"type": "integer",
                 "description": "Amount of disk space (in GB) required to boot image."},
    "self": _read_only("string", "An image self url"),
    "file": _read_only("string", "An image file url"),
    "schema": _read_only("string", "An image schema url"),
    # Nova's snapshots carry these as properties; Glance's schema names them too.
    "instance_uuid": {"type": "string",
                      "description": "Metadata which can be used to record which instance "
                                     "this image is associated with. (Informational only, "
                                     "does not create an instance snapshot.)"},
}
"""Glance's core properties (and ``instance_uuid``); every other key of an image is
a custom property, a string."""


def image_schema() -> dict[str, Any]:
    return {
        "name": "image",
        "properties": PROPERTIES,
        "additionalProperties": {"type": "string"},
        "links": [{"rel": "self", "href": "{self}"},
                  {"rel": "enclosure", "href": "{file}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }


def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "first", "href": "{first}"},
                  {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }
