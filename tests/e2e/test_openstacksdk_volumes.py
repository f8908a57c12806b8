"""openstacksdk's cloud layer on volumes, through the catalog's block-storage
endpoint: ``create_volume(wait=True)``, ``get_volume`` by name,
``attach_volume``/``detach_volume(wait=True)`` (attach through the compute API,
wait through this endpoint), snapshots, limits and ``delete_volume(wait=True)``."""

from __future__ import annotations

import asyncio
import uuid

import openstack

from services.api.catalog import CIRROS_IMAGE_ID


def _connect(identity_url: str) -> openstack.connection.Connection:
    return openstack.connect(
        auth_url=f"{identity_url}/v3", username="demo", password="demo", project_name="demo",
        user_domain_id="default", project_domain_id="default", region_name="region-a",
        compute_api_version="2")


def _volume_life(identity_url: str) -> dict:
    conn = _connect(identity_url)
    name = f"sdk-vol-{uuid.uuid4().hex[:6]}"
    out: dict = {}
    vol = conn.create_volume(size=1, name=name, description="from the sdk",
                             metadata={"by": "sdk"}, wait=True, timeout=60)
    out["created"] = (vol.name, vol.size, vol.metadata)
    found = conn.get_volume(name)
    out["found"] = (found.id == vol.id, found.status, found.is_bootable)
    out["listed"] = [v.name for v in conn.list_volumes() if v.name == name]
    out["limits"] = conn.get_volume_limits().absolute.total_volumes_used
    quota = conn.block_storage.get_quota_set(conn.current_project_id, usage=True)
    out["quota"] = (quota.volumes, quota.usage["volumes"])
    out["zones"] = [z.name for z in conn.block_storage.availability_zones()]
    conn.block_storage.set_volume_metadata(found, color="blue")
    out["metadata"] = dict(conn.block_storage.get_volume_metadata(found).metadata)

    server = conn.compute.create_server(name=f"{name}-srv", image_id=str(CIRROS_IMAGE_ID),
                                        flavor_id="100")
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=60, interval=0.5)
    conn.attach_volume(server, found, wait=True, timeout=60)
    attached = conn.get_volume(vol.id)
    out["attached"] = (attached.status, [(a["server_id"], a["device"])
                                         for a in attached.attachments], server.id)
    conn.detach_volume(server, attached, wait=True, timeout=60)
    detached = conn.get_volume(vol.id)
    out["detached"] = (detached.status, detached.attachments)

    snap = conn.create_volume_snapshot(vol.id, name=f"{name}-snap", wait=True, timeout=60)
    out["snapshot"] = (snap.name, snap.status, snap.volume_id == vol.id)
    conn.delete_volume_snapshot(snap.id, wait=True, timeout=60)
    out["snapshot_after"] = [
        s.id for s in conn.list_volume_snapshots() if s.id == snap.id]

    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60, interval=0.5)
    out["deleted"] = conn.delete_volume(vol.id, wait=True, timeout=60)
    out["after"] = conn.get_volume(vol.id)
    return out


async def test_openstacksdk_cloud_layer_volumes(cloud):
    out = await asyncio.to_thread(_volume_life, cloud.identity_url)
    name = out["created"][0]
    assert out["created"] == (name, 1, {"by": "sdk"})
    assert out["found"] == (True, "available", False)
    assert out["listed"] == [name]
    assert out["limits"] >= 1
    volumes, used = out["quota"]
    assert volumes == 10 and used >= 1
    assert "az1" in out["zones"]
    assert out["metadata"] == {"by": "sdk", "color": "blue"}
    status, attachments, server_id = out["attached"]
    assert (status, attachments) == ("in-use", [(server_id, "/dev/vdb")])
    assert out["detached"] == ("available", [])
    assert out["snapshot"] == (f"{name}-snap", "available", True)
    assert out["snapshot_after"] == []
    assert out["after"] is None
