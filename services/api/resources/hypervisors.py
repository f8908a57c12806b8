"""os-hypervisors (Nova's Hypervisors extension with Juno's hypervisor status):
list, detail, show, statistics, search and servers, admin only.

One hypervisor per compute agent (``compute_hosts``), named by the host's id;
see ``views.compute_hosts`` for the fields. Every call is 403 for a caller
without the admin role (Nova's ``compute_extension:hypervisors`` policy was
``rule:admin_api``). Search and servers match the host name by substring, as
Nova's ``compute_node_search_by_hypervisor`` (a SQL LIKE ``%pattern%``) did, and
answer 404 when nothing matches. Uptime answers 501 (see ``show_uptime``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.api.keys import POOL
from services.api.queries import hypervisors as q
from services.api.representation import View, represented, route
from services.api.resources.common import compute_hosts, parse_digits, require_admin
from services.api.views import compute_hosts as views
from shared.db.hosts import HostState
from shared.errors import NotFound, NotImplementedFault

_POLICY = "compute_extension:hypervisors"


async def _hosts(request: web.Request, conn: Any) -> list[HostState]:
    require_admin(request, _POLICY)
    return await compute_hosts(request, conn)


async def _details(request: web.Request) -> list[dict[str, Any]]:
    async with request.app[POOL].acquire() as conn:
        every = await _hosts(request, conn)
        running = await q.running(conn)
    return [views.hypervisor_detail(h, running.get(h.host, (0, 0))) for h in every]


@represented
async def list_hypervisors(request: web.Request) -> View:
    async with request.app[POOL].acquire() as conn:
        every = await _hosts(request, conn)
    return View({"hypervisors": [views.hypervisor_summary(h) for h in every]})


@represented
async def list_detail(request: web.Request) -> View:
    return View({"hypervisors": await _details(request)})


async def _detail_of(request: web.Request) -> dict[str, Any]:
    """The hypervisor ``{hypervisor_id}`` names; 404 for an unknown or malformed id."""
    raw = request.match_info["hypervisor_id"]
    wanted = parse_digits(raw, ceiling=2**63)
    for detail in await _details(request):
        if detail["id"] == wanted:
            return detail
    raise NotFound(f"Hypervisor with ID '{raw}' could not be found.")


@represented
async def show_hypervisor(request: web.Request) -> View:
    return View({"hypervisor": await _detail_of(request)})


@represented
async def show_uptime(request: web.Request) -> View:
    """501 for a known hypervisor, as Nova for a driver without an uptime: Nimbus
    records when an agent started, not how long its machine has been up.
    (``openstack hypervisor show`` reads the 501 as "no uptime".)"""
    await _detail_of(request)  # 403, or 404 for an unknown id
    raise NotImplementedFault("Virt driver does not implement uptime function.")


@represented
async def show_statistics(request: web.Request) -> View:
    return View({"hypervisor_statistics": views.statistics(await _details(request))})


def _matching(every: list[HostState], pattern: str) -> list[HostState]:
    found = [h for h in every if pattern in h.host]
    if not found:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return found


@represented
async def search_hypervisors(request: web.Request) -> View:
    async with request.app[POOL].acquire() as conn:
        found = _matching(await _hosts(request, conn), request.match_info["pattern"])
    return View({"hypervisors": [views.hypervisor_summary(h) for h in found]})


@represented
async def hypervisor_servers(request: web.Request) -> View:
    """The matching hypervisors, each with the live servers on it (every project's)."""
    async with request.app[POOL].acquire() as conn:
        found = _matching(await _hosts(request, conn), request.match_info["pattern"])
        servers = await q.servers_on(conn, [h.host for h in found])
    out = []
    for h in found:
        entry = views.hypervisor_summary(h)
        entry["servers"] = [{"name": s["name"], "uuid": s["id"]}
                            for s in servers if s["host"] == h.host]
        out.append(entry)
    return View({"hypervisors": out})


def setup(router: web.UrlDispatcher) -> None:
    base = "/v2/{project_id}/os-hypervisors"
    route(router, "GET", base, list_hypervisors)
    route(router, "GET", base + "/detail", list_detail)
    route(router, "GET", base + "/statistics", show_statistics)
    route(router, "GET", base + "/{pattern}/search", search_hypervisors)
    route(router, "GET", base + "/{pattern}/servers", hypervisor_servers)
    route(router, "GET", base + "/{hypervisor_id}/uptime", show_uptime)
    route(router, "GET", base + "/{hypervisor_id}", show_hypervisor)
