"""``openstack floating ip ...`` and ``server add/remove floating ip``."""

from __future__ import annotations

from tests.e2e.client import eventually
from tests.e2e.clients.conftest import Clients


async def test_floating_ip_on_a_server(clients: Clients, server: dict, demo):
    made = await clients.osc_json("floating", "ip", "create", "public")
    address = made["floating_ip_address"]
    assert address.startswith("15.126.0.")
    assert made["port_id"] is None
    try:
        listed = await clients.osc_json("floating", "ip", "list")
        row = [r for r in listed if r["ID"] == made["id"]]
        assert [(r["Floating IP Address"], r["Port"]) for r in row] == [(address, None)]
        api = await demo.get("/os-floating-ips")
        assert [f["instance_id"] for f in api.json["floating_ips"] if f["ip"] == address] == [
            None]

        await clients.osc("server", "add", "floating", "ip", server["id"], address)
        fixed = [a["addr"] for a in (await demo.server(server["id"]))["addresses"]["private"]
                 if a.get("OS-EXT-IPS:type", "fixed") == "fixed"]
        shown = await clients.osc_json("floating", "ip", "show", address)
        assert shown["fixed_ip_address"] == fixed[0]
        assert shown["port_id"]
        api = await demo.get("/os-floating-ips")
        assert [(f["instance_id"], f["fixed_ip"]) for f in api.json["floating_ips"]
                if f["ip"] == address] == [(server["id"], fixed[0])]
        listed = await clients.osc_json("server", "list", "--name", server["name"])
        assert address in listed[0]["Networks"]["private"]

        await clients.osc("server", "remove", "floating", "ip", server["id"], address)
        shown = await clients.osc_json("floating", "ip", "show", address)
        assert (shown["port_id"], shown["fixed_ip_address"]) == (None, None)
        await eventually(lambda: _unlisted(clients, server["name"], address))
    finally:
        await clients.run("openstack", "floating", "ip", "delete", made["id"], check=False)
    assert made["id"] not in [r["ID"] for r in await clients.osc_json("floating", "ip", "list")]
    api = await demo.get("/os-floating-ips")
    assert address not in [f["ip"] for f in api.json["floating_ips"]]


async def _unlisted(clients: Clients, name: str, address: str) -> bool:
    listed = await clients.osc_json("server", "list", "--name", name)
    return address not in listed[0]["Networks"].get("private", [])
