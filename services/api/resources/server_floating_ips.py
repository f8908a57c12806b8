"""The ``addFloatingIp`` and ``removeFloatingIp`` server actions (sections 4.4.8.1-2),
with ``fixed_address`` (os-extended-floating-ips, 4.4.22).

The network service does the work in one transaction (``shared.contracts.
floating_ips``): it checks that the project holds the address and that the
fixed address is the server's, maps or unmaps it, and rewrites the server's
addresses cache, where the floating address shows under the fixed address's
network (OS-EXT-IPS:type ``floating``). Faults:

* no ``address``, or not an IPv4 address: 400 (Nova: "Address not specified");
* an address the project does not hold (another project's too): 404;
* ``fixed_address`` not one of the server's, or a server without a fixed
  address yet: 400, as in Nova;
* add: an address on another server of the project moves to this one, as in
  Nova (the spec is silent): both servers' addresses show it at once; adding
  it again to the same fixed address is a no-op 202;
* remove: the address is not on this server: 409 (Nova said 422, which the
  spec's fault list lacks).

Both answer 202 with no body. Another project's server is 404 before any of
this (``server_actions``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from services.api.keys import RPC
from services.api.representation import View
from services.api.resources.server_tasks import record_action
from shared.contracts.floating_ips import (
    AssociateFloatingIp,
    DisassociateFloatingIp,
    FloatingIpClient,
)
from shared.errors import BadRequest

log = structlog.get_logger(__name__)


def _address(value: Any, action: str, key: str, *, required: bool) -> str | None:
    body = value if isinstance(value, dict) else {}
    raw = body.get(key)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            raise BadRequest(f"Address not specified: {action} needs '{key}'.")
        return None
    if not isinstance(raw, str):
        raise BadRequest(f"{key} must be an IPv4 address.")
    try:
        return str(ipaddress.IPv4Address(raw.strip()))
    except ValueError:
        raise BadRequest(f"{key} {raw!r} is not an IPv4 address.") from None


async def add_floating_ip(request: web.Request, row: asyncpg.Record, value: Any) -> View:
    address = _address(value, "addFloatingIp", "address", required=True)
    fixed = _address(value, "addFloatingIp", "fixed_address", required=False)
    assert address is not None
    fip = await FloatingIpClient(request.app[RPC], request_id=request["request_id"]).associate(AssociateFloatingIp(
        project_id=row["project_id"], server_id=row["id"], address=address,
        fixed_address=fixed))
    log.info("api.floating_ip_added", server_id=str(row["id"]), address=address,
             fixed_address=fip.fixed_address)
    await record_action(request, row, "addFloatingIp")
    return View(None, status=202)


async def remove_floating_ip(request: web.Request, row: asyncpg.Record, value: Any) -> View:
    address = _address(value, "removeFloatingIp", "address", required=True)
    assert address is not None
    await FloatingIpClient(request.app[RPC], request_id=request["request_id"]).disassociate(DisassociateFloatingIp(
        project_id=row["project_id"], server_id=row["id"], address=address))
    log.info("api.floating_ip_removed", server_id=str(row["id"]), address=address)
    await record_action(request, row, "removeFloatingIp")
    return View(None, status=202)
