"""Networks, subnets and ports (read only): the project's networks as Neutron
shows them, and the floating IP pool as an external network.

* A Nimbus network has one subnet, or several when it is a project's default
  network that grew (``subnets``, ``services.network.growth``). A subnet's id
  is derived from its network's id and its ordinal (``subnet_id``): stable,
  and the first subnet's is what it was when every network had one. A further
  subnet is named after its network with its place (``private-2``). Its
  gateway is the CIDR's first host; servers get the addresses from the one
  after it to the one before the broadcast address, which is the subnet's
  allocation pool.
* The floating IP pool (the network service's, asked over RPC) shows as an
  external network (``router:external: true``) named after the pool, with an
  id derived from that name, visible to every project: openstacksdk and the
  openstack CLI take the floating network's id from it and send it back as a
  floating IP's ``floating_network_id``. It has no subnet: no server port is
  ever on it, and a subnet with a gateway would make openstacksdk take it for
  a network that floating IPs map to.
* A port is a server's (``ports``, one per network it is on), the project's
  when its server is; another project's is 404, as an unknown one.
* An id that is not a UUID is 404 like an unknown one (clients look a name
  up by id first and fall back to ``?name=`` only on 404).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from services.api.keys import POOL, RPC
from services.api.neutron.common import add, filtered, not_found, only_fields, timestamp
from services.api.queries import networks as q
from services.api.resources.common import parse_uuid, principal
from services.api.resources.nova_networks import project_networks
from services.api.side_apps import json_response
from shared.contracts.floating_ips import FloatingIpClient

# The namespace of the ids derived here (a fixed, arbitrary UUID).
_NAMESPACE = uuid.UUID("6e0f3c3e-5b1a-4c1e-9d43-6e696d627573")
MTU = 1500


def pool_network_id(pool: str) -> str:
    """The external network's id for a floating IP pool: the same for every
    project and every process, from the pool's name."""
    return str(uuid.uuid5(_NAMESPACE, f"floating-pool:{pool}"))


def subnet_id(network_id: object, ordinal: int = 0) -> str:
    """The id of a network's subnet ``ordinal`` (0: its first)."""
    key = f"subnet:{network_id}" if ordinal == 0 else f"subnet:{network_id}:{ordinal}"
    return str(uuid.uuid5(_NAMESPACE, key))


async def pools(request: web.Request) -> list[str]:
    """The floating IP pools' names (the network service's configuration)."""
    return await FloatingIpClient(request.app[RPC], request_id=request["request_id"]).pools()


async def pool_of_network(request: web.Request, network_id: object) -> str | None:
    """The pool whose external network ``network_id`` is; None for any other id."""
    for pool in await pools(request):
        if pool_network_id(pool) == str(network_id):
            return pool
    return None


def _common(project_id: str, created: Any) -> dict[str, Any]:
    return {"project_id": project_id, "tenant_id": project_id, "description": "",
            "tags": [], "created_at": timestamp(created), "updated_at": timestamp(created),
            "revision_number": 0}


def network_view(row: Mapping[str, Any], ordinals: list[int]) -> dict[str, Any]:
    return {"id": str(row["id"]), "name": row["name"], "status": "ACTIVE",
            "admin_state_up": True, "shared": False,
            "subnets": [subnet_id(row["id"], o) for o in ordinals],
            "router:external": False, "mtu": MTU, "port_security_enabled": True,
            "availability_zone_hints": [], "availability_zones": [],
            "ipv4_address_scope": None, "ipv6_address_scope": None,
            **_common(row["project_id"], row["created_at"])}


def pool_view(pool: str) -> dict[str, Any]:
    return {"id": pool_network_id(pool), "name": pool, "status": "ACTIVE",
            "admin_state_up": True, "shared": False, "subnets": [], "router:external": True,
            "mtu": MTU, "port_security_enabled": True, "availability_zone_hints": [],
            "availability_zones": [], "ipv4_address_scope": None, "ipv6_address_scope": None,
            **_common("", None)}


def subnet_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row of ``queries.networks.subnets``."""
    cidr = ipaddress.IPv4Network(row["cidr"])
    gateway = ipaddress.IPv4Address(row["gateway"])
    ordinal = row["ordinal"]
    return {"id": subnet_id(row["network_id"], ordinal),
            "name": row["name"] if ordinal == 0 else f"{row['name']}-{ordinal + 1}",
            "network_id": str(row["network_id"]),
            "cidr": str(cidr), "gateway_ip": str(gateway), "ip_version": 4,
            "enable_dhcp": True,
            "allocation_pools": [{"start": str(gateway + 1),
                                  "end": str(cidr.broadcast_address - 1)}],
            "dns_nameservers": [], "host_routes": [], "ipv6_ra_mode": None,
            "ipv6_address_mode": None, "subnetpool_id": None, "service_types": [],
            **_common(row["project_id"], row["created_at"])}


def port_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": str(row["id"]), "name": "", "network_id": str(row["network_id"]),
            "device_id": str(row["server_id"]),
            "device_owner": f"compute:{row['availability_zone'] or 'nova'}",
            "mac_address": row["mac"],
            "fixed_ips": [{"subnet_id": subnet_id(row["network_id"], row["subnet_ordinal"] or 0),
                           "ip_address": row["address"]}],
            "status": "ACTIVE", "admin_state_up": True,
            "security_groups": [str(g) for g in row["group_ids"]],
            "binding:vnic_type": "normal", "port_security_enabled": True,
            "allowed_address_pairs": [], "extra_dhcp_opts": [],
            **_common(row["project_id"], row["created_at"])}


async def _network_views(request: web.Request) -> list[dict[str, Any]]:
    """The project's networks (its default one made first if it has none), with
    their subnets' ids."""
    rows = await project_networks(request, principal(request).project_id)
    ordinals: dict[Any, list[int]] = {}
    for s in await _subnet_rows(request):
        ordinals.setdefault(s["network_id"], []).append(s["ordinal"])
    return [network_view(r, ordinals.get(r["id"], [0])) for r in rows]


async def _subnet_rows(request: web.Request) -> list[Any]:
    async with request.app[POOL].acquire() as conn:
        return await q.subnets(conn, principal(request).project_id)


async def list_networks(request: web.Request) -> web.Response:
    views = await _network_views(request)
    views += [pool_view(p) for p in await pools(request)]
    return json_response({"networks": filtered(request, views)})


async def show_network(request: web.Request) -> web.Response:
    raw = request.match_info["network_id"]
    views = [v for v in await _network_views(request) if v["id"] == raw]
    if views:
        return json_response({"network": only_fields(request, views[0])})
    pool = await pool_of_network(request, raw)
    if pool is None:
        raise not_found("Network", raw)
    return json_response({"network": only_fields(request, pool_view(pool))})


async def _subnet_views(request: web.Request) -> list[dict[str, Any]]:
    """The subnets of the project's networks (its default one made first)."""
    await project_networks(request, principal(request).project_id)
    return [subnet_view(r) for r in await _subnet_rows(request)]


async def list_subnets(request: web.Request) -> web.Response:
    return json_response({"subnets": filtered(request, await _subnet_views(request))})


async def show_subnet(request: web.Request) -> web.Response:
    raw = request.match_info["subnet_id"]
    for view in await _subnet_views(request):
        if view["id"] == raw:
            return json_response({"subnet": only_fields(request, view)})
    raise not_found("Subnet", raw)


async def list_ports(request: web.Request) -> web.Response:
    # device_id is the filter every client sends (a server's ports): narrowed in SQL.
    device = request.query.get("device_id")
    server_id = parse_uuid(device) if device is not None else None
    if device is not None and server_id is None:
        return json_response({"ports": []})
    async with request.app[POOL].acquire() as conn:
        rows = await q.ports(conn, principal(request).project_id, server_id=server_id)
    return json_response({"ports": filtered(request, [port_view(r) for r in rows])})


async def show_port(request: web.Request) -> web.Response:
    raw = request.match_info["port_id"]
    pid = parse_uuid(raw)
    rows = []
    if pid is not None:
        async with request.app[POOL].acquire() as conn:
            rows = await q.ports(conn, principal(request).project_id, port_id=pid)
    if not rows:
        raise not_found("Port", raw)
    return json_response({"port": only_fields(request, port_view(rows[0]))})


def setup(router: web.UrlDispatcher) -> None:
    add(router, "GET", "/v2.0/networks", list_networks)
    add(router, "GET", "/v2.0/networks/{network_id}", show_network)
    add(router, "GET", "/v2.0/subnets", list_subnets)
    add(router, "GET", "/v2.0/subnets/{subnet_id}", show_subnet)
    add(router, "GET", "/v2.0/ports", list_ports)
    add(router, "GET", "/v2.0/ports/{port_id}", show_port)
