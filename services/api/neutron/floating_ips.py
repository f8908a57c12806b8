"""Floating IPs as Neutron shows them: the compute API's own (``os-floating-ips``),
allocated, associated, disassociated and released by the same network service
calls, within the same maxTotalFloatingIps (409 OverQuota here).

* ``floating_network_id`` is the pool's external network (``networks.
  pool_network_id``); another network is 400, an unknown id 404. A specific
  ``floating_ip_address`` cannot be asked for (the pool gives its lowest free
  one): 400.
* A floating IP is on a port when it maps to that port's fixed address:
  ``port_id`` names the port (a server's, ``ports``), ``fixed_ip_address`` the
  address. Setting ``port_id`` (at create or by update) associates it with
  that port's server and address (an address on another port moves, as the
  compute API's addFloatingIp); ``port_id: null`` disassociates it. A port
  that is not the project's is 404; a ``fixed_ip_address`` not the port's 400.
  The server's addresses show the floating address at once (the network
  service rewrites them in the same transaction).
* ``status`` is ACTIVE while associated, DOWN otherwise, as in Neutron;
  ``router_id`` is always null (Nimbus has no routers).
* Ids are Nimbus's integers as strings, drawn anew at each allocation; an id
  that is not one is 404.
* A create with ``port_id`` that cannot associate (the port is not the
  project's, has no address yet) gives the address back and answers the fault:
  nothing is left allocated, as a Neutron create is all or nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import structlog
from aiohttp import web

from services.api.keys import POOL, RPC
from services.api.neutron.common import (
    add,
    filtered,
    no_description,
    not_found,
    only_fields,
    read_body,
    timestamp,
)
from services.api.neutron.networks import pool_network_id, pool_of_network
from services.api.queries import floating_ips as q
from services.api.queries import networks as network_q
from services.api.resources import floating_ips as compute_fips
from services.api.resources.common import parse_digits, parse_uuid, principal
from services.api.side_apps import json_response
from shared.contracts.floating_ips import (
    AssociateFloatingIp,
    DeallocateFloatingIp,
    DisassociateFloatingIp,
    FloatingIpClient,
    FloatingIpNotFound,
)
from shared.errors import BadRequest

log = structlog.get_logger(__name__)

_MAX_ID = 2**63 - 1


def view(row: Mapping[str, Any]) -> dict[str, Any]:
    pid = row["project_id"]
    return {"id": str(row["id"]), "floating_ip_address": row["address"],
            "floating_network_id": pool_network_id(row["pool"]),
            "port_id": None if row["port_id"] is None else str(row["port_id"]),
            "fixed_ip_address": row["fixed_address"], "router_id": None,
            "status": "ACTIVE" if row["server_id"] is not None else "DOWN",
            "project_id": pid, "tenant_id": pid, "description": "", "tags": [],
            "port_details": None, "dns_domain": "", "dns_name": "",
            "created_at": timestamp(row["allocated_at"]),
            "updated_at": timestamp(row["associated_at"] or row["allocated_at"]),
            "revision_number": 0}


def _client(request: web.Request) -> FloatingIpClient:
    return FloatingIpClient(request.app[RPC], request_id=request["request_id"])


def _id(raw: str) -> int:
    fid = parse_digits(raw, ceiling=_MAX_ID + 1)
    if fid is None or not 0 < fid <= _MAX_ID:
        raise not_found("FloatingIP", raw)
    return fid


async def _rows(request: web.Request, fid: int | None = None) -> list[Any]:
    async with request.app[POOL].acquire() as conn:
        return await q.with_ports(conn, principal(request).project_id, fid)


async def _one(request: web.Request, fid: int) -> dict[str, Any]:
    rows = await _rows(request, fid)
    if not rows:
        raise not_found("FloatingIP", fid)
    return view(rows[0])


async def _port(request: web.Request, raw: object) -> Any:
    """The project's port ``raw`` names (a row of ``queries.networks.ports``); 404 else."""
    pid = parse_uuid(raw) if isinstance(raw, str) else None
    rows = []
    if pid is not None:
        async with request.app[POOL].acquire() as conn:
            rows = await network_q.ports(conn, principal(request).project_id, port_id=pid)
    if not rows:
        raise not_found("Port", raw)
    return rows[0]


def _fixed_address(body: Mapping[str, Any], port: Any) -> str:
    """The port's address the floating IP maps to: ``fixed_ip_address`` if given."""
    raw = body.get("fixed_ip_address")
    if raw is None:
        return port["address"]
    try:
        wanted = str(ipaddress.IPv4Address(str(raw).strip()))
    except ValueError:
        raise BadRequest(f"Invalid input: fixed_ip_address {raw!r} is not an IPv4 "
                         "address.") from None
    if wanted != port["address"]:
        raise BadRequest(f"Bad floatingip request: port {port['id']} does not have fixed "
                         f"ip {wanted}.")
    return wanted


async def _associate(request: web.Request, address: str, body: Mapping[str, Any]) -> None:
    port = await _port(request, body["port_id"])
    fixed = _fixed_address(body, port)
    await _client(request).associate(AssociateFloatingIp(
        project_id=principal(request).project_id, server_id=port["server_id"],
        address=address, fixed_address=fixed))


async def list_floating_ips(request: web.Request) -> web.Response:
    return json_response({"floatingips": filtered(request,
                                                  [view(r) for r in await _rows(request)])})


async def show_floating_ip(request: web.Request) -> web.Response:
    fip = await _one(request, _id(request.match_info["floatingip_id"]))
    return json_response({"floatingip": only_fields(request, fip)})


async def create_floating_ip(request: web.Request) -> web.Response:
    pid = principal(request).project_id
    body = await read_body(request, "floatingip")
    no_description(body, "floating IPs")
    network = body.get("floating_network_id")
    if not isinstance(network, str) or not network.strip():
        raise BadRequest("Invalid input: 'floating_network_id' is required.")
    if body.get("floating_ip_address") is not None:
        raise BadRequest("A specific floating_ip_address cannot be asked for: the pool "
                         "gives its lowest free address.")
    pool = await pool_of_network(request, network.strip())
    if pool is None:
        async with request.app[POOL].acquire() as conn:
            mine = parse_uuid(network) in {r["id"] for r in await network_q.of_project(conn, pid)}
        if mine:
            raise BadRequest(f"Bad floatingip request: Network {network} is not a valid "
                             "external network.")
        raise not_found("Network", network)
    port = None
    if body.get("port_id") is not None:
        port = await _port(request, body["port_id"])   # checked before anything is taken
        _fixed_address(body, port)
    fip = await compute_fips.allocate(request, pid, pool)
    if port is not None:
        try:
            await _associate(request, fip.address, body)
        except Exception:
            await _client(request).deallocate(DeallocateFloatingIp(project_id=pid,
                                                                   floating_ip_id=fip.id))
            raise
    log.info("api.neutron.floating_ip_created", id=fip.id, address=fip.address,
             port_id=str(port["id"]) if port is not None else None)
    return json_response({"floatingip": await _one(request, fip.id)}, status=201)


async def update_floating_ip(request: web.Request) -> web.Response:
    fid = _id(request.match_info["floatingip_id"])
    body = await read_body(request, "floatingip")
    no_description(body, "floating IPs")
    current = await _rows(request, fid)
    if not current:
        raise not_found("FloatingIP", fid)
    row = current[0]
    try:
        if body.get("port_id") is not None:
            await _associate(request, row["address"], body)
        elif "port_id" in body and row["server_id"] is not None:
            await _client(request).disassociate(DisassociateFloatingIp(
                project_id=row["project_id"], server_id=row["server_id"],
                address=row["address"]))
    except FloatingIpNotFound:
        raise not_found("FloatingIP", fid) from None
    return json_response({"floatingip": only_fields(request, await _one(request, fid))})


async def delete_floating_ip(request: web.Request) -> web.Response:
    fid = _id(request.match_info["floatingip_id"])
    try:
        await _client(request).deallocate(DeallocateFloatingIp(
            project_id=principal(request).project_id, floating_ip_id=fid))
    except FloatingIpNotFound:
        raise not_found("FloatingIP", fid) from None
    return web.Response(status=204)


def setup(router: web.UrlDispatcher) -> None:
    add(router, "GET", "/v2.0/floatingips", list_floating_ips)
    add(router, "POST", "/v2.0/floatingips", create_floating_ip)
    add(router, "GET", "/v2.0/floatingips/{floatingip_id}", show_floating_ip)
    add(router, "PUT", "/v2.0/floatingips/{floatingip_id}", update_floating_ip)
    add(router, "DELETE", "/v2.0/floatingips/{floatingip_id}", delete_floating_ip)
