"""``openstack image ...`` and ``openstack server image create``."""

from __future__ import annotations

from services.api.catalog import CIRROS_IMAGE_ID
from tests.e2e.clients.conftest import CIRROS, Clients


async def test_image_list_and_show(clients: Clients):
    listed = await clients.osc_json("image", "list")
    assert {"ID": str(CIRROS_IMAGE_ID), "Name": CIRROS, "Status": "active"} in listed
    shown = await clients.osc_json("image", "show", CIRROS)
    assert (shown["id"], shown["name"], shown["status"]) == (str(CIRROS_IMAGE_ID), CIRROS,
                                                            "active")
    assert (shown["min_disk"], shown["min_ram"], shown["size"]) == (1, 64, 13147648)
    assert shown["visibility"] == "public"
    assert shown["properties"]["os_distro"] == "cirros"
    missing = await clients.osc_fails("image", "show", "no-such-image")
    assert "no-such-image" in missing.stderr


async def test_server_image_create_wait_then_image_delete(clients: Clients, server: dict, demo):
    name = clients.name("snap")
    made = await clients.osc_json("server", "image", "create", "--name", name, "--wait",
                                  server["id"])
    assert (made["name"], made["status"]) == (name, "active")
    try:
        shown = await clients.osc_json("image", "show", made["id"])
        assert (shown["name"], shown["status"], shown["visibility"]) == (name, "active",
                                                                         "private")
        assert shown["properties"]["instance_uuid"] == server["id"]
        assert made["id"] in [i["ID"] for i in await clients.osc_json("image", "list")]
        api = await demo.get(f"/images/{made['id']}")
        assert api.json["image"]["status"] == "ACTIVE"
    finally:
        await clients.osc("image", "delete", made["id"])
    assert made["id"] not in [i["ID"] for i in await clients.osc_json("image", "list")]
    assert (await demo.get(f"/images/{made['id']}")).status == 404
