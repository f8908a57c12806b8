"""openstacksdk's cloud layer (``conn.create_server(auto_ip=True, wait=True)``,
``create_volume``, ``attach_volume``): the calls that go through the image, network
and block-storage endpoints, as Ansible's and Terraform-like tools make them."""

from __future__ import annotations

import asyncio

import openstack

from tests.e2e.clients.conftest import CIRROS, FLAVOR, Clients


def _connect(identity_url: str) -> openstack.connection.Connection:
    return openstack.connect(
        auth_url=f"{identity_url}/v3", username="demo", password="demo", project_name="demo",
        user_domain_id="default", project_domain_id="default")


def _server_with_ip_and_volume(identity_url: str, name: str) -> dict:
    conn = _connect(identity_url)
    seen: dict = {}
    server = conn.create_server(name, image=CIRROS, flavor=FLAVOR, auto_ip=True, wait=True,
                                timeout=120)
    try:
        seen["server"] = (server.id, server.name, server.status)
        # The cloud layer's get_server fills public_v4/private_v4 (the server that
        # create_server returns after attaching the address is not refilled).
        found = conn.get_server(server.id)
        seen["public_v4"], seen["private_v4"] = found.public_v4, found.private_v4
        seen["fips"] = [(f.floating_ip_address, f.fixed_ip_address)
                        for f in conn.list_floating_ips() if f.port_id]
        volume = conn.create_volume(size=1, name=f"{name}-vol", wait=True, timeout=120)
        try:
            seen["volume"] = (volume.name, volume.size, volume.status)
            seen["volume_id"] = volume.id
            attachment = conn.attach_volume(server, volume, wait=True, timeout=120)
            seen["attachment"] = (attachment.server_id, attachment.volume_id)
            volume = conn.get_volume(volume.id)
            seen["attached"] = (volume.status,
                                [a["server_id"] for a in volume.attachments])
            conn.detach_volume(server, volume, wait=True, timeout=120)
            seen["detached"] = conn.get_volume(volume.id).status
        finally:
            conn.delete_volume(volume.id, wait=True, timeout=120)
        seen["volume_left"] = conn.get_volume(volume.id)
    finally:
        conn.delete_server(server.id, wait=True, timeout=120, delete_ips=True)
    seen["server_left"] = conn.get_server(server.id)
    return seen


async def test_cloud_layer_server_auto_ip_and_volume(clients: Clients, demo):
    name = clients.name("sdk")
    seen = await asyncio.to_thread(_server_with_ip_and_volume, clients.cloud.identity_url, name)
    sid, got_name, status = seen["server"]
    assert (got_name, status) == (name, "ACTIVE")
    assert seen["public_v4"].startswith("15.126.0.")
    assert (seen["public_v4"], seen["private_v4"]) in seen["fips"]
    assert seen["volume"] == (f"{name}-vol", 1, "available")
    assert seen["attachment"] == (sid, seen["volume_id"])
    assert seen["attached"] == ("in-use", [sid])
    assert seen["detached"] == "available"
    assert seen["volume_left"] is None and seen["server_left"] is None
    api = await demo.get("/os-floating-ips")
    assert seen["public_v4"] not in [f["ip"] for f in api.json["floating_ips"]]
