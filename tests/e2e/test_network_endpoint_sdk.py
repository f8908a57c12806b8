"""openstacksdk against the network endpoint, doing what the openstack CLI's
commands and the cloud layer's ``create_server(..., auto_ip=True)`` do, each
result checked against the compute API's view of the same rows.

The SDK is synchronous: each scenario runs in a thread and returns what it saw.
"""

from __future__ import annotations

import asyncio
import ipaddress
import uuid

import openstack
from openstack.image.v2.image import Image

from services.api.catalog import CIRROS_IMAGE_ID
from tests.e2e.client import Api, Cloud
from tests.e2e.projects import new_project

POOL = ipaddress.IPv4Network("15.126.0.0/24")


def _connect(identity_url: str, user: str = "demo",
             password: str = "demo") -> openstack.connection.Connection:
    return openstack.connect(
        auth_url=f"{identity_url}/v3", username=user, password=password, project_name=user,
        user_domain_id="default", project_domain_id="default", region_name="region-a",
        compute_api_version="2")


def _gone(s: dict | None) -> bool:
    return s is None


def _floating(addresses: dict) -> list[str]:
    return [ip["addr"] for ips in addresses.values() for ip in ips
            if ip.get("OS-EXT-IPS:type") == "floating"]


# --------------------------------------------------------------------------- groups


def _groups_and_rules(identity_url: str, project: str, name: str) -> dict:
    """``security group create/list/show``, ``security group rule create/list/delete``
    as the CLI sends them (find by name, fields on lists)."""
    conn = _connect(identity_url, project, "pw")
    out: dict = {}
    sg = conn.network.create_security_group(name=name, description=name)
    out["id"] = sg.id
    found = conn.network.find_security_group(name, ignore_missing=False)
    out["found"] = (found.id, found.name, found.description, found.project_id)
    listed = conn.network.security_groups(fields=["id", "name", "description", "project_id",
                                                  "tags", "shared"])
    out["listed"] = {g.name: g.id for g in listed}
    # Pages of one, the SDK following the markers itself.
    out["paged"] = [g.id for g in conn.network.security_groups(limit=1)]
    out["all"] = [g.id for g in conn.network.security_groups()]
    rule = conn.network.create_security_group_rule(
        security_group_id=sg.id, direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=8080, port_range_max=8081, remote_ip_prefix="0.0.0.0/0")
    out["rule"] = (rule.protocol, rule.port_range_min, rule.port_range_max,
                   rule.remote_ip_prefix, rule.direction, rule.security_group_id)
    out["rules"] = [r.id for r in conn.network.security_group_rules(security_group_id=sg.id)]
    out["rule_id"] = rule.id
    try:
        conn.network.create_security_group_rule(security_group_id=sg.id, direction="egress",
                                                ethertype="IPv4", protocol="tcp")
    except openstack.exceptions.BadRequestException as exc:
        out["egress"] = str(exc)
    return out


def _delete_group(identity_url: str, project: str, name: str, rule_id: str) -> list[str]:
    conn = _connect(identity_url, project, "pw")
    conn.network.delete_security_group_rule(
        conn.network.find_security_group_rule(rule_id, ignore_missing=False))
    conn.network.delete_security_group(conn.network.find_security_group(name,
                                                                        ignore_missing=False))
    return [g.name for g in conn.network.security_groups()]


async def test_cli_security_group_flow_matches_the_compute_api(cloud: Cloud) -> None:
    # A project of its own: the demo project's group quota is shared with other tests.
    demo, project = await new_project(cloud)
    name = f"sdk-sg-{uuid.uuid4().hex[:6]}"
    out = await asyncio.to_thread(_groups_and_rules, cloud.identity_url, project, name)
    assert out["found"] == (out["id"], name, name, demo.project_id)
    assert out["listed"][name] == out["id"] and "default" in out["listed"]
    assert out["paged"] == out["all"] and len(out["all"]) >= 2
    assert out["rule"] == ("tcp", 8080, 8081, "0.0.0.0/0", "ingress", out["id"])
    assert out["rules"] == [out["rule_id"]]
    assert "egress" in out["egress"]
    compute = (await demo.get(f"/os-security-groups/{out['id']}")).json["security_group"]
    assert [(r["id"], r["ip_protocol"], r["from_port"], r["to_port"], r["ip_range"])
            for r in compute["rules"]] == [
        (int(out["rule_id"]), "tcp", 8080, 8081, {"cidr": "0.0.0.0/0"})]
    left = await asyncio.to_thread(_delete_group, cloud.identity_url, project, name,
                                   out["rule_id"])
    assert name not in left and "default" in left
    assert (await demo.get(f"/os-security-groups/{out['id']}")).status == 404


# --------------------------------------------------------------------------- floating IPs


def _cli_floating_ip(identity_url: str, server_id: str) -> dict:
    """``floating ip create public``, ``server add floating ip``, ``server remove
    floating ip``, ``floating ip list``, ``floating ip delete`` as OSC 10 does them."""
    conn = _connect(identity_url)
    out: dict = {}
    network = conn.network.find_network("public", ignore_missing=False)
    fip = conn.network.create_ip(floating_network_id=network.id)
    address = fip.floating_ip_address
    out["created"] = (address, fip.status, fip.port_id)
    # server add floating ip SERVER IP
    obj = conn.network.find_ip(address, ignore_missing=False)
    ports = list(conn.network.ports(device_id=server_id))
    out["ports"] = [(p.id, p.fixed_ips[0]["ip_address"]) for p in ports]
    updated = conn.network.update_ip(obj, port_id=ports[0].id)
    out["added"] = (updated.status, updated.port_id, updated.fixed_ip_address)
    out["addresses"] = conn.compute.get_server(server_id).addresses
    out["listed"] = [(f.floating_ip_address, f.status) for f in conn.network.ips()]
    # server remove floating ip SERVER IP
    obj = conn.network.find_ip(address, ignore_missing=False)
    conn.network.update_ip(obj, port_id=None)
    out["after_remove"] = conn.compute.get_server(server_id).addresses
    out["status_after"] = conn.network.get_ip(obj.id).status
    conn.network.delete_ip(conn.network.find_ip(address, ignore_missing=False))
    out["left"] = [f.floating_ip_address for f in conn.network.ips()]
    out["address"] = address
    return out


async def test_cli_floating_ip_flow(cloud: Cloud, demo: Api) -> None:
    r = await demo.boot(name="sdk-cli-fip")
    sid = r.json["server"]["id"]
    try:
        server, _ = await demo.wait_status(sid, lambda s: bool(s) and s["status"] == "ACTIVE")
        out = await asyncio.to_thread(_cli_floating_ip, cloud.identity_url, sid)
        address = out["address"]
        assert ipaddress.IPv4Address(address) in POOL
        assert out["created"] == (address, "DOWN", None)
        ((port_id, fixed),) = out["ports"]
        assert fixed in [ip["addr"] for ips in server["addresses"].values() for ip in ips]
        assert out["added"] == ("ACTIVE", port_id, fixed)
        assert _floating(out["addresses"]) == [address]
        assert (address, "ACTIVE") in out["listed"]
        assert _floating(out["after_remove"]) == []
        assert out["status_after"] == "DOWN"
        assert address not in out["left"]
        ips = (await demo.get("/os-floating-ips")).json["floating_ips"]
        assert address not in [f["ip"] for f in ips]
    finally:
        await demo.delete(f"/servers/{sid}")
        await demo.wait_status(sid, _gone)


# --------------------------------------------------------------------------- the cloud layer


def _create_server_auto_ip(identity_url: str, name: str) -> dict:
    """``conn.create_server(..., auto_ip=True, wait=True)``, then a second server
    on the first one's network by name (``server create --network NAME``)."""
    conn = _connect(identity_url)
    image = Image(id=str(CIRROS_IMAGE_ID))
    server = conn.create_server(name, image=image, flavor="standard.xsmall", auto_ip=True,
                                wait=True, timeout=120)
    out: dict = {"id": server.id, "addresses": server.addresses,
                 # the cloud layer's own reading of the server's public address
                 "public_v4": conn.get_server(server.id).public_v4}
    out["fips"] = [(f.floating_ip_address, f.port_id, f.status) for f in conn.network.ips()]
    out["ports"] = [p.id for p in conn.network.ports(device_id=server.id)]
    (net_name,) = server.addresses
    second = conn.create_server(name + "-2", image=image, flavor="standard.xsmall",
                                auto_ip=False, network=net_name, wait=True, timeout=120)
    out["net_name"] = net_name
    out["second"] = second.addresses
    for s in (server, second):
        conn.delete_server(s.id, wait=True, delete_ips=True, timeout=120)
    out["left"] = [f.floating_ip_address for f in conn.network.ips()]
    return out


async def test_create_server_with_auto_ip_ends_with_a_floating_ip(cloud: Cloud,
                                                                  demo: Api) -> None:
    name = f"sdk-auto-{uuid.uuid4().hex[:6]}"
    out = await asyncio.to_thread(_create_server_auto_ip, cloud.identity_url, name)
    (address,) = _floating(out["addresses"])
    assert ipaddress.IPv4Address(address) in POOL
    assert out["public_v4"] == address
    (port_id,) = out["ports"]
    assert (address, port_id, "ACTIVE") in out["fips"]
    assert list(out["second"]) == [out["net_name"]]
    assert _floating(out["second"]) == []
    assert address not in out["left"]
    assert (await demo.server(out["id"])) is None
