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


# --------------------------------------------------------------------------- security groups


async def _compute_group(api: Api, gid: str) -> dict | None:
    r = await api.get(f"/os-security-groups/{gid}")
    return r.json["security_group"] if r.status == 200 else None


async def test_security_groups_are_the_compute_apis_both_ways(cloud: Cloud) -> None:
    # A project of its own: the demo project's group quota is shared with other tests.
    demo, _ = await new_project(cloud)
    name = f"nsg-{uuid.uuid4().hex[:6]}"
    r = await net(demo, "POST", "/v2.0/security-groups",
                  {"security_group": {"name": name, "description": "made here"}})
    assert r.status == 201, r.raw
    group = r.json["security_group"]
    assert (group["name"], group["description"], group["project_id"], group["tenant_id"],
            group["security_group_rules"], group["stateful"]) == (
        name, "made here", demo.project_id, demo.project_id, [], True)
    gid = group["id"]
    seen = await _compute_group(demo, gid)
    assert seen is not None and (seen["id"], seen["name"], seen["description"]) == (
        int(gid), name, "made here")

    # Made by the compute API: shown here, by id and by name.
    other = f"csg-{uuid.uuid4().hex[:6]}"
    r = await demo.post("/os-security-groups",
                        json={"security_group": {"name": other, "description": "compute"}})
    cid = str(r.json["security_group"]["id"])
    r = await net(demo, "GET", f"/v2.0/security-groups/{cid}")
    assert (r.json["security_group"]["name"], r.json["security_group"]["description"]) == (
        other, "compute")
    r = await net(demo, "GET", f"/v2.0/security-groups?name={other}&fields=id")
    assert r.json["security_groups"] == [{"id": cid}]
    names = [g["name"] for g in (await net(demo, "GET", "/v2.0/security-groups")).json[
        "security_groups"]]
    assert {"default", name, other} <= set(names)

    # Update here, seen there; a description left out is kept.
    r = await net(demo, "PUT", f"/v2.0/security-groups/{gid}",
                  {"security_group": {"name": name + "-2"}})
    assert r.status == 200, r.raw
    assert (r.json["security_group"]["name"], r.json["security_group"]["description"]) == (
        name + "-2", "made here")
    assert (await _compute_group(demo, gid))["name"] == name + "-2"
    r = await net(demo, "PUT", f"/v2.0/security-groups/{gid}.json",
                  {"security_group": {"description": ""}})
    assert (r.json["security_group"]["name"], r.json["security_group"]["description"]) == (
        name + "-2", "")
    assert (await _compute_group(demo, gid))["description"] == ""

    # Delete here (204), gone there; and the other one deleted there, gone here.
    assert (await net(demo, "DELETE", f"/v2.0/security-groups/{gid}")).status == 204
    assert await _compute_group(demo, gid) is None
    assert (await demo.delete(f"/os-security-groups/{cid}")).status == 202
    neutron_error(await net(demo, "GET", f"/v2.0/security-groups/{cid}"),
                  404, "SecurityGroupNotFound")


async def test_rules_translate_to_and_from_nimbus_rules(cloud: Cloud) -> None:
    demo, _ = await new_project(cloud)
    made = await net(demo, "POST", "/v2.0/security-groups",
                     {"security_group": {"name": f"rules-{uuid.uuid4().hex[:6]}"}})
    gid = made.json["security_group"]["id"]
    source = await net(demo, "POST", "/v2.0/security-groups",
                       {"security_group": {"name": f"src-{uuid.uuid4().hex[:6]}"}})
    sid = source.json["security_group"]["id"]
    try:
        asked = [
            # (Neutron rule, what it shows as here, what the compute API shows)
            ({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
              "remote_ip_prefix": "10.0.0.0/8"},
             ("tcp", 22, 22, "10.0.0.0/8", None), ("tcp", 22, 22, {"cidr": "10.0.0.0/8"}, {})),
            ({"protocol": "icmp"},
             ("icmp", None, None, "0.0.0.0/0", None), ("icmp", -1, -1, {"cidr": "0.0.0.0/0"}, {})),
            ({"protocol": "17", "remote_ip_prefix": "192.168.1.7/24"},
             ("udp", 1, 65535, "192.168.1.0/24", None),
             ("udp", 1, 65535, {"cidr": "192.168.1.0/24"}, {})),
            ({"remote_group_id": sid},
             (None, None, None, None, sid),
             (None, None, None, {}, {"name": source.json["security_group"]["name"],
                                     "tenant_id": demo.project_id})),
            ({"protocol": None, "remote_ip_prefix": "172.16.0.0/12"},
             (None, None, None, "172.16.0.0/12", None),
             (None, None, None, {"cidr": "172.16.0.0/12"}, {})),
        ]
        ids = []
        for body, here, there in asked:
            r = await net(demo, "POST", "/v2.0/security-group-rules", {"security_group_rule": {
                "security_group_id": gid, "direction": "ingress", "ethertype": "IPv4", **body}})
            assert r.status == 201, (body, r.raw)
            rule = r.json["security_group_rule"]
            assert (rule["protocol"], rule["port_range_min"], rule["port_range_max"],
                    rule["remote_ip_prefix"], rule["remote_group_id"]) == here, body
            assert (rule["direction"], rule["ethertype"], rule["security_group_id"],
                    rule["project_id"]) == ("ingress", "IPv4", gid, demo.project_id)
            ids.append(rule["id"])
            compute = {str(x["id"]): x for x in (await _compute_group(demo, gid))["rules"]}
            c = compute[rule["id"]]
            assert (c["ip_protocol"], c["from_port"], c["to_port"], c["ip_range"],
                    c["group"]) == there, body
        # A rule made by the compute API shows here.
        r = await demo.post("/os-security-group-rules", json={"security_group_rule": {
            "parent_group_id": gid, "ip_protocol": "tcp", "from_port": 80, "to_port": 443,
            "cidr": "0.0.0.0/0"}})
        cr = str(r.json["security_group_rule"]["id"])
        r = await net(demo, "GET", f"/v2.0/security-group-rules/{cr}")
        assert (r.json["security_group_rule"]["port_range_min"],
                r.json["security_group_rule"]["port_range_max"]) == (80, 443)
        r = await net(demo, "GET", f"/v2.0/security-group-rules?security_group_id={gid}")
        assert sorted(x["id"] for x in r.json["security_group_rules"]) == sorted(ids + [cr])
        r = await net(demo, "GET", f"/v2.0/security-groups/{gid}")
        assert len(r.json["security_group"]["security_group_rules"]) == 6

        assert (await net(demo, "DELETE", f"/v2.0/security-group-rules/{ids[0]}")).status == 204
        assert ids[0] not in [str(x["id"]) for x in (await _compute_group(demo, gid))["rules"]]
        neutron_error(await net(demo, "DELETE", f"/v2.0/security-group-rules/{ids[0]}"),
                      404, "SecurityGroupRuleNotFound")
    finally:
        await net(demo, "DELETE", f"/v2.0/security-groups/{gid}")
        await net(demo, "DELETE", f"/v2.0/security-groups/{sid}")


async def test_rules_nimbus_cannot_hold_and_bad_bodies_change_nothing(cloud: Cloud,
                                                                      alt: Api) -> None:
    demo, _ = await new_project(cloud)
    made = await net(demo, "POST", "/v2.0/security-groups",
                     {"security_group": {"name": f"bad-{uuid.uuid4().hex[:6]}"}})
    gid = made.json["security_group"]["id"]
    base = {"security_group_id": gid, "direction": "ingress", "ethertype": "IPv4"}
    try:
        bad = [
            ({"direction": "egress"}, "egress"),
            ({"ethertype": "IPv6"}, "IPv4 only"),
            ({"protocol": "tcp", "remote_ip_prefix": "::/0"}, "IPv6"),
            ({"protocol": "gre"}, "not supported"),
            ({"port_range_min": 22, "port_range_max": 22}, "protocol"),
            ({"protocol": "tcp", "port_range_min": 80, "port_range_max": 22}, "port range"),
            ({"protocol": "tcp", "port_range_min": 22}, "both"),
            ({"protocol": "tcp", "remote_ip_prefix": "10.0.0.0/8", "remote_group_id": gid},
             "Only remote_ip_prefix or remote_group_id"),
            ({"protocol": "tcp", "remote_ip_prefix": "nonsense"}, "cidr"),
            ({"direction": None}, "direction"),
        ]
        for change, words in bad:
            r = await net(demo, "POST", "/v2.0/security-group-rules",
                          {"security_group_rule": {**base, **change}})
            assert words in neutron_error(r, 400, "HTTPBadRequest"), (change, r.json)
        for body in (None, {"security_group_rule": "x"}, {"rule": {}}):
            r = await net(demo, "POST", "/v2.0/security-group-rules", body)
            neutron_error(r, 400, "HTTPBadRequest")
        r = await net(demo, "POST", "/v2.0/security-groups", {"security_group": {}})
        neutron_error(r, 400, "HTTPBadRequest")
        r = await net(demo, "POST", "/v2.0/security-groups",
                      {"security_group": {"name": "x", "stateful": False}})
        assert "stateful" in neutron_error(r, 400, "HTTPBadRequest")
        assert (await _compute_group(demo, gid))["rules"] == []
        assert "x" not in [g["name"] for g in (await demo.get("/os-security-groups")).json[
            "security_groups"]]

        # Another project's group: unknown everywhere.
        for method, path, body in (
                ("GET", f"/v2.0/security-groups/{gid}", None),
                ("PUT", f"/v2.0/security-groups/{gid}", {"security_group": {"name": "mine"}}),
                ("DELETE", f"/v2.0/security-groups/{gid}", None),
                ("POST", "/v2.0/security-group-rules", {"security_group_rule": {
                    **base, "protocol": "tcp"}})):
            neutron_error(await net(alt, method, path, body), 404, "SecurityGroupNotFound")
        assert gid not in [g["id"] for g in (await net(alt, "GET", "/v2.0/security-groups")).json[
            "security_groups"]]
        assert (await _compute_group(demo, gid))["name"] == made.json["security_group"]["name"]
        for unknown in ("web", "1.5", "99999999999999999999"):
            neutron_error(await net(demo, "GET", f"/v2.0/security-groups/{unknown}"),
                          404, "SecurityGroupNotFound")
    finally:
        await net(demo, "DELETE", f"/v2.0/security-groups/{gid}")


async def test_default_group_and_quota_as_over_quota(cloud: Cloud) -> None:
    api, _ = await new_project(cloud, maxSecurityGroups=2, maxSecurityGroupRules=1)
    r = await net(api, "GET", "/v2.0/security-groups")
    (default,) = r.json["security_groups"]          # made on first sight, as compute does
    assert default["name"] == "default"
    rules = {(x["protocol"], x["port_range_min"], x["port_range_max"], x["remote_ip_prefix"])
             for x in default["security_group_rules"]}
    assert rules == {("icmp", None, None, "0.0.0.0/0"), ("tcp", 22, 22, "0.0.0.0/0")}
    made = await net(api, "POST", "/v2.0/security-groups", {"security_group": {"name": "one"}})
    assert made.status == 201
    r = await net(api, "POST", "/v2.0/security-groups", {"security_group": {"name": "two"}})
    assert "too many security groups" in neutron_error(r, 409, "OverQuota")
    assert "Retry-After" not in r.headers
    gid = made.json["security_group"]["id"]
    rule = {"security_group_id": gid, "direction": "ingress", "protocol": "tcp"}
    assert (await net(api, "POST", "/v2.0/security-group-rules",
                      {"security_group_rule": rule})).status == 201
    r = await net(api, "POST", "/v2.0/security-group-rules",
                  {"security_group_rule": {**rule, "protocol": "udp"}})
    neutron_error(r, 409, "OverQuota")
    assert len((await api.get("/os-security-groups")).json["security_groups"]) == 2
    neutron_error(await net(api, "PUT", f"/v2.0/security-groups/{default['id']}",
                            {"security_group": {"name": "renamed"}}), 400, "HTTPBadRequest")
    neutron_error(await net(api, "DELETE", f"/v2.0/security-groups/{default['id']}"),
                  400, "HTTPBadRequest")


# --------------------------------------------------------------------------- floating IPs


async def test_floating_ip_create_associate_disassociate_delete(cloud: Cloud, alt: Api) -> None:
    demo, _ = await new_project(cloud)      # its own floating IP quota
    server = await boot_active(demo, "nfip")
    sid = server["id"]
    pool = await pool_network(demo)
    try:
        r = await net(demo, "POST", "/v2.0/floatingips",
                      {"floatingip": {"floating_network_id": pool["id"]}})
        assert r.status == 201, r.raw
        fip = r.json["floatingip"]
        assert ipaddress.IPv4Address(fip["floating_ip_address"]) in POOL
        assert (fip["status"], fip["port_id"], fip["fixed_ip_address"], fip["router_id"],
                fip["floating_network_id"], fip["project_id"]) == (
            "DOWN", None, None, None, pool["id"], demo.project_id)
        compute = (await demo.get(f"/os-floating-ips/{fip['id']}")).json["floating_ip"]
        assert (compute["ip"], compute["instance_id"], compute["pool"]) == (
            fip["floating_ip_address"], None, "public")

        (port,) = (await net(demo, "GET", f"/v2.0/ports?device_id={sid}")).json["ports"]
        fixed = port["fixed_ips"][0]["ip_address"]
        r = await net(demo, "PUT", f"/v2.0/floatingips/{fip['id']}",
                      {"floatingip": {"port_id": port["id"]}})
        assert r.status == 200, r.raw
        assert (r.json["floatingip"]["status"], r.json["floatingip"]["port_id"],
                r.json["floatingip"]["fixed_ip_address"]) == ("ACTIVE", port["id"], fixed)
        assert floating_on(await demo.server(sid)) == [fip["floating_ip_address"]]
        compute = (await demo.get(f"/os-floating-ips/{fip['id']}")).json["floating_ip"]
        assert (compute["instance_id"], compute["fixed_ip"]) == (sid, fixed)
        r = await net(demo, "GET", f"/v2.0/floatingips?port_id={port['id']}&fields=id")
        assert r.json["floatingips"] == [{"id": fip["id"]}]
        r = await net(demo, "GET",
                      f"/v2.0/floatingips?floating_ip_address={fip['floating_ip_address']}")
        assert [f["status"] for f in r.json["floatingips"]] == ["ACTIVE"]

        r = await net(demo, "PUT", f"/v2.0/floatingips/{fip['id']}",
                      {"floatingip": {"port_id": None}})
        assert (r.json["floatingip"]["status"], r.json["floatingip"]["port_id"]) == ("DOWN", None)
        assert floating_on(await demo.server(sid)) == []

        # Created on the port at once.
        r = await net(demo, "POST", "/v2.0/floatingips", {"floatingip": {
            "floating_network_id": pool["id"], "port_id": port["id"], "fixed_ip_address": fixed}})
        assert r.status == 201, r.raw
        second = r.json["floatingip"]
        assert (second["status"], second["port_id"]) == ("ACTIVE", port["id"])
        assert floating_on(await demo.server(sid)) == [second["floating_ip_address"]]

        # Another project sees none of it and cannot touch it.
        assert (await net(alt, "GET", "/v2.0/floatingips")).json["floatingips"] == []
        for method, body in (("GET", None), ("PUT", {"floatingip": {"port_id": None}}),
                             ("DELETE", None)):
            neutron_error(await net(alt, method, f"/v2.0/floatingips/{second['id']}", body),
                          404, "FloatingIPNotFound")

        for f in (fip, second):
            assert (await net(demo, "DELETE", f"/v2.0/floatingips/{f['id']}")).status == 204
            assert (await demo.get(f"/os-floating-ips/{f['id']}")).status == 404
        assert floating_on(await demo.server(sid)) == []
    finally:
        await demo.delete(f"/servers/{sid}")
        await demo.wait_status(sid, gone)


async def test_floating_ip_bad_input_and_quota(cloud: Cloud, demo: Api) -> None:
    api, _ = await new_project(cloud, maxTotalFloatingIps=1)
    server = await boot_active(api, "nfip-bad")
    pool = await pool_network(api)
    try:
        (port,) = (await net(api, "GET", f"/v2.0/ports?device_id={server['id']}")).json["ports"]
        (mine,) = [n for n in (await net(api, "GET", "/v2.0/networks")).json["networks"]
                   if not n["router:external"]]
        demo_server = await boot_active(demo, "nfip-other")
        try:
            (theirs,) = (await net(demo, "GET",
                                   f"/v2.0/ports?device_id={demo_server['id']}")).json["ports"]
        finally:
            await demo.delete(f"/servers/{demo_server['id']}")
        cases = [
            ({}, 400, "HTTPBadRequest"),
            ({"floating_network_id": str(uuid.uuid4())}, 404, "NetworkNotFound"),
            ({"floating_network_id": mine["id"]}, 400, "HTTPBadRequest"),
            ({"floating_network_id": pool["id"], "floating_ip_address": "15.126.0.9"},
             400, "HTTPBadRequest"),
            ({"floating_network_id": pool["id"], "port_id": theirs["id"]}, 404, "PortNotFound"),
            ({"floating_network_id": pool["id"], "description": "web"}, 400, "HTTPBadRequest"),
            ({"floating_network_id": pool["id"], "port_id": port["id"],
              "fixed_ip_address": "10.9.9.9"}, 400, "HTTPBadRequest"),
        ]
        for body, status, kind in cases:
            r = await net(api, "POST", "/v2.0/floatingips", {"floatingip": body})
            neutron_error(r, status, kind)
        assert (await api.get("/os-floating-ips")).json["floating_ips"] == []

        r = await net(api, "POST", "/v2.0/floatingips",
                      {"floatingip": {"floating_network_id": pool["id"]}})
        assert r.status == 201
        fid = r.json["floatingip"]["id"]
        r = await net(api, "POST", "/v2.0/floatingips",
                      {"floatingip": {"floating_network_id": pool["id"]}})
        neutron_error(r, 409, "OverQuota")
        neutron_error(await net(api, "PUT", f"/v2.0/floatingips/{fid}",
                                {"floatingip": {"port_id": theirs["id"]}}), 404, "PortNotFound")
        assert (await net(api, "GET", f"/v2.0/floatingips/{fid}")).json["floatingip"][
            "status"] == "DOWN"
        for unknown in ("15.126.0.1", "abc", "0"):
            neutron_error(await net(api, "GET", f"/v2.0/floatingips/{unknown}"),
                          404, "FloatingIPNotFound")
    finally:
        await delete_all(api)
        for fip in (await api.get("/os-floating-ips")).json["floating_ips"]:
            await api.delete(f"/os-floating-ips/{fip['id']}")
