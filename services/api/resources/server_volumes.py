"""Boot from a volume (section 2.2.1): the volumes a create server asks for.

Nova's two syntaxes are accepted (never both in one request, as in Nova):

* ``block_device_mapping`` (v1): ``[{"volume_id": ..., "device_name": "vda",
  "delete_on_termination": "1"}]``; the entry at the root device (``vda``) is
  the boot volume;
* ``block_device_mapping_v2``: ``[{"source_type": "volume", "destination_type":
  "volume", "uuid": ..., "boot_index": 0, "delete_on_termination": true}]``;
  ``boot_index`` 0 is the boot volume. An ``image`` -> ``local`` entry with
  ``boot_index`` 0 is the image the server boots from (as ``imageRef``).

Each volume must be the project's and ``available`` (400 otherwise, as Nova
answered a bad mapping). A server with a boot volume needs no image: its root
disk is the volume, and ``imageRef`` may be absent or empty. Other volumes are attached from the start at their device, or the
next free one. Making a volume out of an image or a snapshot at create
(``source_type`` ``image``/``snapshot``/``blank`` -> ``volume``) is not built:
400 says so; create the volume first (os-volumes with ``imageRef``).

In the create's transaction the volumes go ``available`` -> ``in-use``,
attached to the one server being made (:func:`take`); so a volume-backed create
makes exactly one server (``max_count`` above 1 is 400, as in Nova).
"""

from __future__ import annotations

from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from services.api.resources.common import parse_uuid
from services.api.resources.volume_attachments import ROOT_DEVICE, choose_device
from shared.contracts.compute import BlockDevice
from shared.db import volumes as volume_db
from shared.errors import BadRequest
from shared.volume_states import VolumeStatus

MAX_MAPPINGS = 24
"""Devices vdb..vdy beside the root disk."""

_TAKE = """
UPDATE volumes SET status = 'in-use', server_id = $3, device = $4, boot = $5,
       delete_on_termination = $6, status_request_id = $7, updated_at = now()
 WHERE id = $1 AND project_id = $2 AND status = 'available' AND server_id IS NULL
   AND deleted_at IS NULL
RETURNING *"""


class VolumeRequest(NamedTuple):
    volume_id: UUID
    device: str | None
    """As asked (``/dev/vdb``), None to choose one; the boot volume is ``/dev/vda``."""
    boot: bool
    delete_on_termination: bool


class Mappings(NamedTuple):
    volumes: list[VolumeRequest]
    image_ref: str | None = None
    """The image a v2 ``image`` -> ``local`` boot entry names."""

    @property
    def boot(self) -> VolumeRequest | None:
        return next((v for v in self.volumes if v.boot), None)


def _flag(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("1", "0", "true", "false", "t", "f",
                                                            "yes", "no", "y", "n", "on", "off"):
        return value.strip().lower() in ("1", "true", "t", "yes", "y", "on")
    raise BadRequest(f"Invalid input for field/attribute {field}: it must be a boolean.")


def _device(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest("device_name must be a string such as /dev/vdb.")
    value = value.strip()
    return value if value.startswith("/dev/") else f"/dev/{value}"


def _boot_index(value: Any) -> int | None:
    if value is None or value == "" or value == "none":
        return None
    try:
        index = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid boot_index {value!r}: it must be an integer.") from None
    return index if index >= 0 else None


def _volume_id(value: Any, field: str) -> UUID:
    vid = parse_uuid(value) if isinstance(value, str) else None
    if vid is None:
        raise BadRequest(f"Invalid input for field/attribute {field}: {value!r} is not a "
                         "volume id.")
    return vid


def parse(server: dict[str, Any]) -> Mappings:
    """The volumes ``server`` (the create body's object) asks for, checked for form."""
    v1, v2 = server.get("block_device_mapping"), server.get("block_device_mapping_v2")
    if v1 is not None and v2 is not None:
        raise BadRequest("Using different block_device_mapping syntaxes is not allowed.")
    entries = v1 if v1 is not None else v2
    if entries is None:
        return Mappings([])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise BadRequest("block_device_mapping must be a list of objects.")
    if len(entries) > MAX_MAPPINGS:
        raise BadRequest(f"At most {MAX_MAPPINGS} block device mappings are allowed.")
    out = _parse_v1(entries) if v1 is not None else _parse_v2(entries)
    ids = [v.volume_id for v in out.volumes]
    if len(set(ids)) != len(ids):
        raise BadRequest("A volume can be mapped only once.")
    if sum(v.boot for v in out.volumes) > 1:
        raise BadRequest("Only one volume can be the boot volume.")
    return out


def _parse_v1(entries: list[dict[str, Any]]) -> Mappings:
    volumes = []
    for e in entries:
        if _flag(e.get("no_device", False), "no_device"):
            continue
        if e.get("snapshot_id") is not None:
            raise BadRequest("Booting from a volume snapshot is not supported; create a "
                             "volume from the snapshot first.")
        device = _device(e.get("device_name"))
        if device is None:
            raise BadRequest("device_name must be given in block_device_mapping.")
        volumes.append(VolumeRequest(
            volume_id=_volume_id(e.get("volume_id"), "volume_id"), device=device,
            boot=device == ROOT_DEVICE,
            delete_on_termination=_flag(e.get("delete_on_termination", False),
                                        "delete_on_termination")))
    return Mappings(volumes)


def _parse_v2(entries: list[dict[str, Any]]) -> Mappings:
    volumes, image_ref = [], None
    for e in entries:
        source, dest = e.get("source_type"), e.get("destination_type", "volume")
        boot = _boot_index(e.get("boot_index")) == 0
        if source == "image" and dest == "local":
            if not boot:
                raise BadRequest("An image block device must be the boot device "
                                 "(boot_index 0).")
            image_ref = e.get("uuid") if isinstance(e.get("uuid"), str) else None
            if not image_ref:
                raise BadRequest("Invalid input for field/attribute uuid: the image's id.")
            continue
        if source != "volume" or dest != "volume":
            raise BadRequest(f"A block device with source_type {source!r} and destination_type "
                             f"{dest!r} is not supported: map an existing volume "
                             "(source_type and destination_type 'volume').")
        device = ROOT_DEVICE if boot else _device(e.get("device_name"))
        volumes.append(VolumeRequest(
            volume_id=_volume_id(e.get("uuid"), "uuid"), device=device, boot=boot,
            delete_on_termination=_flag(e.get("delete_on_termination", False),
                                        "delete_on_termination")))
    return Mappings(volumes, image_ref)


def refuse_volume_backed(row: Any, action: str, instead: str) -> None:
    """400 for an action that re-images or copies the root disk of a server that boots
    from a volume (no image): not built for those; ``instead`` says what to do."""
    if row["image_id"] is None:
        raise BadRequest(f"Cannot '{action}' instance {row['id']}: it boots from a volume. "
                         f"{instead}")


async def check(conn: asyncpg.Connection, project_id: str, mappings: Mappings) -> None:
    """Every mapped volume is the project's and available (400 otherwise)."""
    for v in mappings.volumes:
        row = await volume_db.get(conn, v.volume_id)
        if row is None or row["deleted_at"] is not None or row["project_id"] != project_id:
            raise BadRequest(f"Volume {v.volume_id} could not be found.")
        if row["status"] != VolumeStatus.AVAILABLE or volume_db.connection_of(row) is None:
            raise BadRequest(f"Volume {v.volume_id} is not available: it is {row['status']}.")


async def take(conn: asyncpg.Connection, project_id: str, server_id: UUID,
               mappings: Mappings, *, request_id: str | None) -> tuple[BlockDevice, ...]:
    """In the create's transaction: attach every mapped volume to the new server
    (``in-use``), choosing the devices not given; 400 if one was taken meanwhile."""
    taken = {ROOT_DEVICE} | {v.device for v in mappings.volumes if v.device}
    devices = []
    for v in sorted(mappings.volumes, key=lambda v: (not v.boot, v.device is None)):
        device = v.device
        if device is None:
            device = choose_device(None, taken)
            taken.add(device)
        elif not v.boot:
            taken.discard(device)
            device = choose_device(device, taken)
            taken.add(device)
        row = await conn.fetchrow(_TAKE, v.volume_id, project_id, server_id, device, v.boot,
                                  v.delete_on_termination, request_id)
        if row is None:
            raise BadRequest(f"Volume {v.volume_id} is not available.")
        connection = volume_db.connection_of(row)
        assert connection is not None
        devices.append(BlockDevice(volume_id=v.volume_id, device=device, connection=connection,
                                   boot=v.boot))
    return tuple(devices)
