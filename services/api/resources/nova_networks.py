"""os-networks and os-tenant-networks: the project's networks as Nova showed them
when it proxied a network service (Icehouse/Juno), for clients that look
networks up on the compute API (``openstack server create --network X``
without a network endpoint; gophercloud lists os-tenant-networks before each
server it creates).

Both list and show the caller's project's networks only (admins included: the
network endpoint is where an operator sees every project's); another project's
network, or an id that is not a UUID, is 404 as Nova's "Network not found".
Networks are made by the network service (a project's default on first use,
more by the management command), so creating, deleting and associating them
here answers 501, as Nova did when its network API could not do it (Nova's
neutron proxy); os-networks' admin-only operations check the admin role first,
as Nova's policy did, so a member gets 403.
"""

from __future__ import annotations

from aiohttp import web

from services.api.keys import POOL
from services.api.queries import networks as q
from services.api.representation import View, represented, route
from services.api.resources.common import parse_uuid, principal, require_admin
from services.api.views import nova_networks as views
from shared.errors import NotFound, NotImplementedFault


async def _rows(request: web.Request) -> list:
    async with request.app[POOL].acquire() as conn:
        return await q.of_project(conn, principal(request).project_id)


async def _row(request: web.Request):
    nid = parse_uuid(request.match_info["network_id"])
    row = None
    if nid is not None:
        async with request.app[POOL].acquire() as conn:
            row = await q.get(conn, principal(request).project_id, nid)
    if row is None:
        raise NotFound("Network not found")
    return row


@represented
async def list_networks(request: web.Request) -> View:
    admin = principal(request).is_admin
    return View({"networks": [views.network(r, is_admin=admin) for r in await _rows(request)]})


@represented
async def show_network(request: web.Request) -> View:
    return View({"network": views.network(await _row(request),
                                          is_admin=principal(request).is_admin)})


@represented
async def list_tenant_networks(request: web.Request) -> View:
    return View({"networks": [views.tenant_network(r) for r in await _rows(request)]})


@represented
async def show_tenant_network(request: web.Request) -> View:
    return View({"network": views.tenant_network(await _row(request))})


def _not_implemented(admin_only: bool):
    @represented
    async def handler(request: web.Request) -> View:
        if admin_only:
            require_admin(request, "compute_extension:networks")
        raise NotImplementedFault("Creating, deleting and associating networks is not "
                                  "implemented by this cloud's network API.")
    return handler


def setup(router: web.UrlDispatcher) -> None:
    nets = "/v2/{project_id}/os-networks"
    route(router, "GET", nets, list_networks)
    route(router, "POST", nets, _not_implemented(True))
    route(router, "POST", nets + "/add", _not_implemented(True))
    route(router, "GET", nets + "/{network_id}", show_network)
    route(router, "DELETE", nets + "/{network_id}", _not_implemented(True))
    route(router, "POST", nets + "/{network_id}/action", _not_implemented(True))
    tenant = "/v2/{project_id}/os-tenant-networks"
    route(router, "GET", tenant, list_tenant_networks)
    route(router, "POST", tenant, _not_implemented(False))
    route(router, "GET", tenant + "/{network_id}", show_tenant_network)
    route(router, "DELETE", tenant + "/{network_id}", _not_implemented(False))
