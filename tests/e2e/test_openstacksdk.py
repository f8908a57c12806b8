"""A real client library, through the Keystone endpoint and the catalog."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid

import openstack

from services.api.catalog import CIRROS_IMAGE_ID


def _connect(identity_url: str) -> openstack.connection.Connection:
    return openstack.connect(
        auth_url=f"{identity_url}/v3", username="demo", password="demo", project_name="demo",
        user_domain_id="default", project_domain_id="default", region_name="region-a",
        compute_api_version="2")


def _boot_and_delete(identity_url: str) -> dict:
    conn = _connect(identity_url)
    flavors = {f.name: f for f in conn.compute.flavors()}
    server = conn.compute.create_server(name="sdk-boot", image_id=str(CIRROS_IMAGE_ID),
                                        flavor_id=flavors["standard.xsmall"].id)
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=60, interval=0.5)
    seen = {"status": server.status, "addresses": server.addresses, "id": server.id,
            "names": [s.name for s in conn.compute.servers()]}
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60, interval=0.5)
    seen["after"] = [s.id for s in conn.compute.servers()]
    return seen


async def test_openstacksdk_boots_and_deletes(cloud):
    seen = await asyncio.to_thread(_boot_and_delete, cloud.identity_url)
    assert seen["status"] == "ACTIVE"
    assert seen["addresses"], seen
    assert "sdk-boot" in seen["names"]
    assert seen["id"] not in seen["after"]


def _metadata_lists_and_pages(identity_url: str) -> dict:
    conn = _connect(identity_url)
    tag = f"sdk-{uuid.uuid4().hex[:6]}"
    user_data = base64.b64encode(b"#!/bin/sh\necho hello\n").decode()
    created = [conn.compute.create_server(
        name=f"{tag}-{i}", image_id=str(CIRROS_IMAGE_ID), flavor_id="100",
        metadata={"role": "web", "n": str(i)}, user_data=user_data) for i in range(3)]
    for s in created:
        conn.compute.wait_for_server(s, status="ACTIVE", wait=60, interval=0.5)
    out: dict = {}
    # Filter by name, walk pages of one (the SDK follows the markers itself).
    out["paged"] = [s.name for s in conn.compute.servers(name=f"^{tag}-", limit=1)]
    out["detail_meta"] = {s.name: s.metadata for s in conn.compute.servers(
        details=True, name=f"^{tag}-")}
    first = created[0]
    conn.compute.set_server_metadata(first, color="blue")
    out["after_set"] = dict(conn.compute.get_server_metadata(first).metadata)
    conn.compute.delete_server_metadata(first, ["role"])
    out["after_delete"] = dict(conn.compute.get_server_metadata(first).metadata)
    for s in created:
        conn.compute.delete_server(s)
    for s in created:
        conn.compute.wait_for_delete(s, wait=60, interval=0.5)
    out["left"] = [s.name for s in conn.compute.servers(name=f"^{tag}-")]
    return out


async def test_openstacksdk_metadata_filters_and_pages(cloud):
    out = await asyncio.to_thread(_metadata_lists_and_pages, cloud.identity_url)
    tag = out["paged"][0].rsplit("-", 1)[0]
    assert sorted(out["paged"]) == [f"{tag}-0", f"{tag}-1", f"{tag}-2"]
    assert out["paged"] == sorted(out["paged"], reverse=True)   # newest first
    assert out["detail_meta"][f"{tag}-1"] == {"role": "web", "n": "1"}
    assert out["after_set"] == {"role": "web", "n": "0", "color": "blue"}
    assert out["after_delete"] == {"n": "0", "color": "blue"}
    assert out["left"] == []


def _volume_life(identity_url: str) -> dict:
    """The README's volume walk with openstacksdk's compute proxy: os-volumes and
    os-snapshots through the proxy's own requests (the SDK has no resource for them
    on the compute API), attachments through its VolumeAttachment calls."""
    conn = _connect(identity_url)
    compute = conn.compute
    seen: dict = {}

    def wait(path: str, key: str, status: str | None) -> dict | None:
        for _ in range(600):
            r = compute.get(path)
            if r.status_code == 404 and status is None:
                return None
            body = r.json()[key]
            if body["status"] == status:
                return body
            assert body["status"] not in ("error", "error_deleting"), body
            time.sleep(0.1)  # polling for the status, as the SDK's own waits do
        raise AssertionError(f"{path} never reached {status}")

    server = compute.create_server(name="sdk-vol", image_id=str(CIRROS_IMAGE_ID), flavor_id="100")
    server = compute.wait_for_server(server, status="ACTIVE", wait=60, interval=0.5)
    vol = compute.post("/os-volumes", json={"volume": {"size": 1, "display_name": "sdk"}}).json()
    vid = vol["volume"]["id"]
    wait(f"/os-volumes/{vid}", "volume", "available")
    attachment = compute.create_volume_attachment(server, volume_id=vid)
    seen["device"] = attachment.device
    seen["in_use"] = wait(f"/os-volumes/{vid}", "volume", "in-use")["attachments"]
    seen["listed"] = [a.volume_id for a in compute.volume_attachments(server)]
    snap = compute.post("/os-snapshots", json={"snapshot": {"volume_id": vid, "force": True}})
    sid = snap.json()["snapshot"]["id"]
    wait(f"/os-snapshots/{sid}", "snapshot", "available")
    compute.delete_volume_attachment(server, vid)
    wait(f"/os-volumes/{vid}", "volume", "available")
    copy = compute.post("/os-volumes", json={"volume": {"size": 1, "snapshot_id": sid}}).json()
    cid = copy["volume"]["id"]
    seen["copy"] = wait(f"/os-volumes/{cid}", "volume", "available")["snapshotId"]
    compute.delete(f"/os-snapshots/{sid}")
    wait(f"/os-snapshots/{sid}", "snapshot", None)
    for v in (vid, cid):
        compute.delete(f"/os-volumes/{v}")
        wait(f"/os-volumes/{v}", "volume", None)
    compute.delete_server(server)
    compute.wait_for_delete(server, wait=60, interval=0.5)
    seen.update(vid=vid, sid=sid, server=server.id)
    return seen


async def test_openstacksdk_does_the_whole_volume_life(cloud):
    seen = await asyncio.to_thread(_volume_life, cloud.identity_url)
    assert seen["device"] == "/dev/vdb"
    assert seen["in_use"] == [{"device": "/dev/vdb", "id": seen["vid"], "serverId": seen["server"],
                               "volumeId": seen["vid"]}]
    assert seen["listed"] == [seen["vid"]]
    assert seen["copy"] == seen["sid"]
