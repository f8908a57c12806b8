"""``openstack server ...``: create by names, list, show, the actions, console, events
and delete, as the demo user with the README's environment."""

from __future__ import annotations

from services.api.catalog import CIRROS_IMAGE_ID
from tests.e2e.client import eventually
from tests.e2e.clients.conftest import CIRROS, FLAVOR, FLAVOR_ID, Clients


async def test_server_create_with_every_option_then_delete_wait(clients: Clients, tmp_path):
    """A new project's first server, everything given by name: image, flavor, the
    project's network (made on first use), a security group and a keypair made just
    before; --wait returns the ACTIVE server; delete --wait returns once it is gone."""
    user, project_id = await clients.new_user()
    api = await clients.cloud.login(user, "pw", user)
    key, group, name = clients.name("create-key"), clients.name("create-sg"), clients.name("full")
    await clients.osc_json("keypair", "create", "--private-key", str(tmp_path / "k"), key,
                           user=user)
    made = await clients.osc_json("security", "group", "create", group, user=user)
    assert made["name"] == group
    shown = await clients.osc_json(
        "server", "create", "--image", CIRROS, "--flavor", FLAVOR, "--network", "private",
        "--security-group", group, "--key-name", key, "--wait", name, user=user)
    assert shown["name"] == name
    assert shown["status"] == "ACTIVE"
    assert shown["project_id"] == project_id
    assert shown["image"] == f"{CIRROS} ({CIRROS_IMAGE_ID})"
    assert shown["flavor"] == f"{FLAVOR} ({FLAVOR_ID})"
    assert shown["key_name"] == key
    # OSC sends the group's id (found on the network endpoint); Nova shows its name.
    assert shown["security_groups"] == [{"name": group}]
    server = await api.server(shown["id"])
    assert server["key_name"] == key
    assert [g["name"] for g in server["security_groups"]] == [group]
    fixed = [a["addr"] for a in server["addresses"]["private"]]
    assert len(fixed) == 1 and shown["addresses"] == {"private": fixed}

    await clients.osc("server", "delete", "--wait", name, user=user)
    assert await clients.osc_json("server", "list", user=user) == []
    assert await api.server(shown["id"]) is None
    await clients.osc("security", "group", "delete", group, user=user)
    await clients.osc("keypair", "delete", key, user=user)


async def test_server_list_and_show(clients: Clients, server: dict, demo):
    listed = await clients.osc_json("server", "list", "--name", server["name"])
    assert [(s["ID"], s["Name"], s["Status"]) for s in listed] == [
        (server["id"], server["name"], "ACTIVE")]
    row = listed[0]
    assert row["Flavor"] == FLAVOR
    assert row["Image"] == CIRROS
    api = await demo.server(server["id"])
    assert row["Networks"] == {net: [a["addr"] for a in addrs]
                               for net, addrs in api["addresses"].items()}
    shown = await clients.osc_json("server", "show", server["name"])
    assert shown["id"] == server["id"]
    assert shown["status"] == "ACTIVE"
    assert shown["project_id"] == demo.project_id
    assert shown["image"] == f"{CIRROS} ({CIRROS_IMAGE_ID})"
    assert shown["flavor"] == f"{FLAVOR} ({FLAVOR_ID})"
    # Another project's server is not found, by id or by name.
    for ref in (server["id"], server["name"]):
        hidden = await clients.osc_fails("server", "show", ref, user="alt")
        assert f"No Server found for {ref}" in hidden.stderr


async def test_server_list_long_names_the_image(clients: Clients, server: dict):
    """--long asks the image endpoint for every listed image at once (?id=in:...)."""
    listed = await clients.osc_json("server", "list", "--long", "--name", server["name"])
    assert [(s["ID"], s["Image Name"], s["Image ID"], s["Flavor Name"], s["Flavor ID"])
            for s in listed] == [(server["id"], CIRROS, str(CIRROS_IMAGE_ID), FLAVOR, FLAVOR_ID)]


async def test_server_reboot_soft_and_hard(clients: Clients, server: dict, demo):
    for kind in ("--soft", "--hard"):
        out = await clients.osc("server", "reboot", kind, "--wait", server["id"])
        assert "Complete" in out
        assert (await demo.server(server["id"]))["status"] == "ACTIVE"
    events = await clients.osc_json("server", "event", "list", server["id"])
    assert [e["Action"] for e in events].count("reboot") == 2


async def test_server_stop_then_start(clients: Clients, server: dict):
    await clients.osc("server", "stop", server["id"])
    await eventually(lambda: _status_is(clients, server["id"], "SHUTOFF"), timeout=30)
    shown = await clients.osc_json("server", "show", server["id"])
    assert shown["OS-EXT-STS:power_state"] == 4     # -f json gives the number: Shutdown
    await clients.osc("server", "start", server["id"])
    await eventually(lambda: _status_is(clients, server["id"], "ACTIVE"), timeout=30)
    shown = await clients.osc_json("server", "show", server["id"])
    assert shown["OS-EXT-STS:power_state"] == 1     # Running


async def test_server_rescue_then_unrescue(clients: Clients, server: dict):
    await clients.osc("server", "rescue", server["id"])
    await eventually(lambda: _status_is(clients, server["id"], "RESCUE"), timeout=30)
    await clients.osc("server", "unrescue", server["id"])
    await eventually(lambda: _status_is(clients, server["id"], "ACTIVE"), timeout=30)
    actions = [e["Action"] for e in await clients.osc_json("server", "event", "list",
                                                          server["id"])]
    assert {"rescue", "unrescue"} <= set(actions)


async def test_console_log(clients: Clients, server: dict, demo):
    out = await clients.osc("console", "log", "show", "--lines", "5", server["id"])
    api = await demo.post(f"/servers/{server['id']}/action",
                          json={"os-getConsoleOutput": {"length": 5}})
    assert api.status == 200, api.raw
    assert out.strip() and out.rstrip("\n") == api.json["output"].rstrip("\n")


async def test_console_url(clients: Clients, server: dict):
    proxy = clients.cloud.stack.services["consoleproxy"].env_extra[
        "NIMBUS_CONSOLEPROXY_PUBLIC_URL"]
    shown = await clients.osc_json("console", "url", "show", "--novnc", server["id"])
    assert shown["type"] == "novnc"
    assert shown["url"].startswith(f"{proxy}/vnc_auto.html?token=")
    assert shown["url"].endswith(f"&title={server['name']}({server['id']})")


async def test_server_event_list_and_show(clients: Clients, server: dict, demo):
    events = await clients.osc_json("server", "event", "list", server["id"])
    create = [e for e in events if e["Action"] == "create"]
    assert len(create) == 1 and create[0]["Server ID"] == server["id"]
    shown = await clients.osc_json("server", "event", "show", server["id"],
                                   create[0]["Request ID"])
    assert shown["action"] == "create"
    assert shown["request_id"] == create[0]["Request ID"]
    assert shown["project_id"] == demo.project_id


async def _status_is(clients: Clients, server_id: str, status: str) -> bool:
    return await clients.status(server_id) == status
