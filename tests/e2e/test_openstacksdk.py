"""A real client library, through the Keystone endpoint and the catalog."""

from __future__ import annotations

import asyncio

import openstack

from services.api.catalog import CIRROS_IMAGE_ID


def _boot_and_delete(identity_url: str) -> dict:
    conn = openstack.connect(
        auth_url=f"{identity_url}/v3", username="demo", password="demo", project_name="demo",
        user_domain_id="default", project_domain_id="default", region_name="region-a",
        compute_api_version="2")
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
