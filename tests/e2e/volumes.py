"""Helpers of the volume tests: create and wait for volumes and snapshots, count rows."""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.client import Api, Cloud, Response, eventually

VOLUME_NS = "http://docs.openstack.org/volume/api/v1"

# The spec's views (4.4.13): camelCase for list and show, snake_case for the
# create answer (with status) and for snapshots.
VOLUME_KEYS = {"attachments", "availabilityZone", "createdAt", "displayDescription",
               "displayName", "id", "metadata", "size", "snapshotId", "status", "volumeType"}
CREATED_KEYS = {"id", "display_name", "display_description", "status", "size", "volume_type",
                "metadata", "availability_zone", "snapshot_id", "attachments", "created_at"}
SNAPSHOT_KEYS = {"id", "display_name", "display_description", "volume_id", "status", "size",
                 "created_at"}

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
ISO_MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")


async def create(api: Api, size: int | None = 1, **fields: Any) -> Response:
    volume = {**({"size": size} if size is not None else {}), **fields}
    return await api.post("/os-volumes", json={"volume": volume})


async def volume(api: Api, vid: str) -> dict | None:
    r = await api.get(f"/os-volumes/{vid}")
    if r.status == 404:
        return None
    assert r.status == 200, r.raw
    return r.json["volume"]


async def _why(api: Api, table: str, rid: str) -> str:
    reason = await api.cloud.fetchval(f"SELECT error_reason FROM {table} WHERE id = $1::uuid",
                                      rid)
    return f"{table} {rid} failed: {reason}"


async def wait_volume(api: Api, vid: str, status: str = "available",
                      timeout: float = 60.0) -> dict:
    """Poll the volume until it shows ``status``; fail at once if it ends in error."""
    async def reached() -> dict | None:
        vol = await volume(api, vid)
        assert vol is not None, f"volume {vid} is gone"
        if vol["status"] == "error" and status != "error":
            raise AssertionError(await _why(api, "volumes", vid))
        return vol if vol["status"] == status else None
    return await eventually(reached, timeout=timeout)


async def wait_volume_gone(api: Api, vid: str, timeout: float = 60.0) -> None:
    async def gone() -> bool:
        vol = await volume(api, vid)
        if vol is not None and vol["status"] == "error_deleting":
            raise AssertionError(await _why(api, "volumes", vid))
        return vol is None
    await eventually(gone, timeout=timeout)


async def available_volume(api: Api, size: int = 1, **fields: Any) -> dict:
    r = await create(api, size, **fields)
    assert r.status == 202, r.raw
    return await wait_volume(api, r.json["volume"]["id"])


async def snapshot(api: Api, sid: str) -> dict | None:
    r = await api.get(f"/os-snapshots/{sid}")
    if r.status == 404:
        return None
    assert r.status == 200, r.raw
    return r.json["snapshot"]


async def wait_snapshot(api: Api, sid: str, status: str = "available",
                        timeout: float = 60.0) -> dict:
    async def reached() -> dict | None:
        snap = await snapshot(api, sid)
        assert snap is not None, f"snapshot {sid} is gone"
        if snap["status"] == "error":
            raise AssertionError(await _why(api, "volume_snapshots", sid))
        return snap if snap["status"] == status else None
    return await eventually(reached, timeout=timeout)


async def wait_snapshot_gone(api: Api, sid: str, timeout: float = 60.0) -> None:
    async def gone() -> bool:
        return await snapshot(api, sid) is None
    await eventually(gone, timeout=timeout)


async def available_snapshot(api: Api, volume_id: str, **fields: Any) -> dict:
    r = await api.post("/os-snapshots", json={"snapshot": {"volume_id": volume_id, **fields}})
    assert r.status == 202, r.raw
    return await wait_snapshot(api, r.json["snapshot"]["id"])


async def rows(cloud: Cloud, project_id: str) -> list[tuple[str, str, str, bool]]:
    """Every volume and snapshot row the project ever had (deleted ones included) with
    its status: what a refused request must leave as it was. Take it while nothing
    of the project is in a transient status."""
    conn = await cloud.db()
    try:
        found = await conn.fetch(
            "SELECT 'volume' AS kind, id::text, status, deleted_at IS NULL AS live FROM volumes"
            " WHERE project_id = $1 UNION ALL"
            " SELECT 'snapshot', id::text, status, deleted_at IS NULL FROM volume_snapshots"
            " WHERE project_id = $1 ORDER BY 1, 2", project_id)
        return [tuple(r) for r in found]
    finally:
        await conn.close()


async def delete_volumes(api: Api) -> None:
    """Delete every snapshot and volume of the project and wait until they are gone."""
    for snap in (await api.get("/os-snapshots")).json["snapshots"]:
        await wait_snapshot_settled(api, snap["id"])
        await api.delete(f"/os-snapshots/{snap['id']}")
        await wait_snapshot_gone(api, snap["id"])
    for vol in (await api.get("/os-volumes")).json["volumes"]:
        if vol["status"] == "creating":
            await wait_volume(api, vol["id"])
        r = await api.delete(f"/os-volumes/{vol['id']}")
        assert r.status in (202, 404), r.raw
        await wait_volume_gone(api, vol["id"])


async def wait_snapshot_settled(api: Api, sid: str) -> None:
    async def settled() -> bool:
        snap = await snapshot(api, sid)
        return snap is None or snap["status"] != "creating"
    await eventually(settled, timeout=60)


async def attach(api: Api, sid: str, vid: str, device: str | None = None) -> dict:
    """Attach the volume to the server (202); the answer's volumeAttachment."""
    body: dict[str, Any] = {"volumeId": vid}
    if device is not None:
        body["device"] = device
    r = await api.post(f"/servers/{sid}/os-volume_attachments", json={"volumeAttachment": body})
    assert r.status == 202, r.raw
    return r.json["volumeAttachment"]


async def detach(api: Api, sid: str, vid: str) -> None:
    r = await api.delete(f"/servers/{sid}/os-volume_attachments/{vid}")
    assert r.status == 202, r.raw


async def delete_volume(api: Api, vid: str) -> None:
    """Delete the volume (202, or 404 if it went already) and wait until it is gone."""
    r = await api.delete(f"/os-volumes/{vid}")
    assert r.status in (202, 404), r.raw
    await wait_volume_gone(api, vid)
