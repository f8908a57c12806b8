"""The network endpoint (a Neutron v2.0 subset, port 9696) over plain HTTP:
discovery, networks, subnets and ports, security groups and rules, floating IPs
and quotas, each checked against what the compute API shows of the same rows,
with project isolation and bad input that changes nothing.

Floating IPs come from the session's shared pool: every test gives back what it
takes. openstacksdk's use of the endpoint is in test_network_endpoint_sdk.py.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from tests.e2e.client import Api, Cloud, Response
from tests.e2e.projects import delete_all, new_project

POOL = ipaddress.IPv4Network("15.126.0.0/24")


def active(s: dict | None) -> bool:
    return bool(s) and s["status"] == "ACTIVE"


def gone(s: dict | None) -> bool:
    return s is None


async def net(api: Api, method: str, path: str, json: Any = None, **kw: Any) -> Response:
    """``method path`` on the network endpoint as ``api``'s user."""
    return await api.cloud.request(method, path, token=api.token, json=json,
                                   base=api.cloud.network_url, **kw)


async def boot_active(api: Api, name: str, **extra: Any) -> dict:
    r = await api.boot(name=name, **extra)
    assert r.status == 202, r.raw
    server, _ = await api.wait_status(r.json["server"]["id"], active)
    assert server is not None
    return server


async def pool_network(api: Api) -> dict:
    r = await net(api, "GET", "/v2.0/networks?router:external=true")
    assert r.status == 200, r.raw
    (pool,) = r.json["networks"]
    return pool


def neutron_error(r: Response, status: int, kind: str) -> str:
    assert r.status == status, (r.status, r.raw)
    assert r.json["NeutronError"]["type"] == kind, r.json
    return r.json["NeutronError"]["message"]


def floating_on(server: dict) -> list[str]:
    return [ip["addr"] for ips in server["addresses"].values() for ip in ips
            if ip["OS-EXT-IPS:type"] == "floating"]


# --------------------------------------------------------------------------- discovery


async def test_versions_resources_and_extensions(cloud: Cloud, demo: Api) -> None:
    r = await cloud.request("GET", "/", base=cloud.network_url)          # no token
    assert r.status == 200
    (version,) = r.json["versions"]
    assert version["id"] == "v2.0" and version["status"] == "CURRENT"
    assert version["links"][0]["href"] == f"{cloud.network_url}/v2.0/"

    neutron_error(await cloud.request("GET", "/v2.0/networks", base=cloud.network_url),
                  401, "HTTPUnauthorized")

    r = await net(demo, "GET", "/v2.0")
    collections = {res["collection"]: res["links"][0]["href"] for res in r.json["resources"]}
    assert collections["networks"] == f"{cloud.network_url}/v2.0/networks"
    assert {"ports", "subnets", "security-groups", "security-group-rules", "floatingips",
            "quotas"} <= set(collections)

    for path in ("/v2.0/extensions", "/v2.0/extensions.json"):
        r = await net(demo, "GET", path)
        aliases = {e["alias"] for e in r.json["extensions"]}
        assert {"security-group", "external-net", "quotas", "quota_details",
                "standard-attr-description"} <= aliases
        assert "router" not in aliases and "availability_zone" not in aliases
    r = await net(demo, "GET", "/v2.0/extensions/external-net")
    assert r.json["extension"]["name"] == "Neutron external network"
    neutron_error(await net(demo, "GET", "/v2.0/extensions/Availability Zone"),
                  404, "ExtensionNotFound")


# --------------------------------------------------------------------------- networks


async def test_networks_subnets_and_the_floating_pool(cloud: Cloud, alt: Api) -> None:
    api, _ = await new_project(cloud)
    server = await boot_active(api, "net-view")
    try:
        r = await net(api, "GET", "/v2.0/networks")
        assert r.status == 200
        mine = [n for n in r.json["networks"] if not n["router:external"]]
        (pool,) = [n for n in r.json["networks"] if n["router:external"]]
        (network,) = mine
        # The compute API shows the server's address under the same network name.
        (net_name,) = server["addresses"]
        (fixed,) = [ip["addr"] for ip in server["addresses"][net_name]]
        assert network["name"] == net_name
        assert (network["status"], network["admin_state_up"], network["shared"],
                network["project_id"], network["tenant_id"]) == (
            "ACTIVE", True, False, api.project_id, api.project_id)
        (subnet_id,) = network["subnets"]
        assert (pool["name"], pool["subnets"], pool["shared"]) == ("public", [], False)

        r = await net(api, "GET", f"/v2.0/subnets/{subnet_id}")
        subnet = r.json["subnet"]
        cidr = ipaddress.IPv4Network(subnet["cidr"])
        assert ipaddress.IPv4Address(fixed) in cidr
        assert subnet["network_id"] == network["id"] and subnet["ip_version"] == 4
        assert subnet["gateway_ip"] == str(cidr.network_address + 1)
        assert subnet["allocation_pools"] == [{"start": str(cidr.network_address + 2),
                                               "end": str(cidr.broadcast_address - 1)}]
        r = await net(api, "GET", f"/v2.0/subnets?network_id={network['id']}")
        assert [s["id"] for s in r.json["subnets"]] == [subnet_id]

        # By id (with Neutron's .json too), then by name as clients look up.
        r = await net(api, "GET", f"/v2.0/networks/{network['id']}.json")
        assert r.json["network"] == network
        r = await net(api, "GET", f"/v2.0/networks?name={net_name}&fields=id&fields=name")
        assert r.json["networks"] == [{"id": network["id"], "name": net_name}]
        r = await net(api, "GET", f"/v2.0/networks/{pool['id']}?fields=id,router:external")
        assert r.json["network"] == {"id": pool["id"], "router:external": True}
        for unknown in (net_name, str(uuid.uuid4()), "public"):
            neutron_error(await net(api, "GET", f"/v2.0/networks/{unknown}"),
                          404, "NetworkNotFound")

        # Another project: the same pool network, never this project's network.
        r = await net(alt, "GET", "/v2.0/networks")
        assert pool in r.json["networks"]
        assert network["id"] not in [n["id"] for n in r.json["networks"]]
        neutron_error(await net(alt, "GET", f"/v2.0/networks/{network['id']}"),
                      404, "NetworkNotFound")
        neutron_error(await net(alt, "GET", f"/v2.0/subnets/{subnet_id}"),
                      404, "SubnetNotFound")
    finally:
        await delete_all(api)


async def test_ports_of_a_server(demo: Api, alt: Api) -> None:
    server = await boot_active(demo, "port-view")
    sid = server["id"]
    try:
        groups = (await net(demo, "GET", "/v2.0/security-groups?name=default")).json
        (default,) = groups["security_groups"]
        r = await net(demo, "GET", f"/v2.0/ports?device_id={sid}")
        (port,) = r.json["ports"]
        ((net_name, (address,)),) = server["addresses"].items()
        assert port["fixed_ips"][0]["ip_address"] == address["addr"]
        assert port["mac_address"] == address["OS-EXT-IPS-MAC:mac_addr"]
        assert (port["device_id"], port["status"], port["admin_state_up"],
                port["project_id"], port["security_groups"]) == (
            sid, "ACTIVE", True, demo.project_id, [default["id"]])
        assert port["device_owner"] == f"compute:{server['OS-EXT-AZ:availability_zone']}"
        network = (await net(demo, "GET", f"/v2.0/networks/{port['network_id']}")).json
        assert network["network"]["name"] == net_name
        assert port["fixed_ips"][0]["subnet_id"] == network["network"]["subnets"][0]

        assert (await net(demo, "GET", f"/v2.0/ports/{port['id']}")).json["port"] == port
        r = await net(demo, "GET",
                      f"/v2.0/ports?fixed_ips=ip_address%3D{address['addr']}&fields=id")
        assert r.json["ports"] == [{"id": port["id"]}]
        r = await net(demo, "GET", f"/v2.0/ports?network_id={port['network_id']}")
        assert port["id"] in [p["id"] for p in r.json["ports"]]
        r = await net(demo, "GET", f"/v2.0/ports?device_id={uuid.uuid4()}")
        assert r.json["ports"] == []

        neutron_error(await net(alt, "GET", f"/v2.0/ports/{port['id']}"), 404, "PortNotFound")
        assert (await net(alt, "GET", f"/v2.0/ports?device_id={sid}")).json["ports"] == []
        neutron_error(await net(demo, "GET", "/v2.0/ports/not-a-port"), 404, "PortNotFound")
    finally:
        await demo.delete(f"/servers/{sid}")
        await demo.wait_status(sid, gone)
    r = await net(demo, "GET", f"/v2.0/ports?device_id={sid}")
    assert r.json["ports"] == []


# --------------------------------------------------------------------------- quotas


async def test_quotas_show_nimbus_limits_and_usage(cloud: Cloud, demo: Api) -> None:
    api, _ = await new_project(cloud, maxTotalFloatingIps=3, maxSecurityGroups=7,
                               maxSecurityGroupRules=9)
    r = await net(api, "GET", f"/v2.0/quotas/{api.project_id}")
    assert r.json["quota"] == {"floatingip": 3, "security_group": 7, "security_group_rule": 9,
                               "network": -1, "subnet": -1, "port": -1, "router": 0}
    made = await net(api, "POST", "/v2.0/security-groups",
                     {"security_group": {"name": "counted"}})
    assert made.status == 201, made.raw
    r = await net(api, "GET", f"/v2.0/quotas/{api.project_id}/details")
    quota = r.json["quota"]
    # default (2 rules) and the new group
    assert quota["security_group"] == {"limit": 7, "used": 2, "reserved": 0}
    assert quota["security_group_rule"] == {"limit": 9, "used": 2, "reserved": 0}
    assert quota["floatingip"] == {"limit": 3, "used": 0, "reserved": 0}
    r = await net(api, "GET", f"/v2.0/quotas/{api.project_id}/default")
    assert r.json["quota"]["floatingip"] == 10
    neutron_error(await net(api, "GET", f"/v2.0/quotas/{demo.project_id}"),
                  403, "HTTPForbidden")
