"""Availability zones: list (section 4.4.2.1) and Nova's admin detail.

The zones are those of the compute agents that have ever reported
(``compute_hosts``); whether one is available is decided from the hosts'
heartbeats with the API's ``service_down_time_s``, the same measure delete uses
to decide a host is down. See ``views.availability_zones`` for the rules.

``os-availability-zone/detail`` adds each zone's hosts and their services. It
is admin only, 403 to others, as Nova's policy had it: ``openstack
availability zone list`` asks for the detail first and falls back to the
plain list on exactly that 403. Nova also listed an ``internal`` zone holding
its control services; Nimbus records heartbeats only for compute agents, so
there is no such zone here (see ``views.compute_hosts``).
"""

from __future__ import annotations

from aiohttp import web

from services.api.keys import POOL
from services.api.representation import View, represented, route
from services.api.resources.common import compute_hosts, require_admin
from services.api.views import availability_zones as views
from services.api.views import compute_hosts as host_views


@represented
async def list_zones(request: web.Request) -> View:
    async with request.app[POOL].acquire() as conn:
        every = await compute_hosts(request, conn)
    return View({"availabilityZoneInfo": views.zones(every)})


@represented
async def list_zones_detail(request: web.Request) -> View:
    require_admin(request, "compute_extension:availability_zone:detail")
    async with request.app[POOL].acquire() as conn:
        every = await compute_hosts(request, conn)
    return View({"availabilityZoneInfo": host_views.zones_detail(every)})


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/os-availability-zone/detail", list_zones_detail)
    route(router, "GET", "/v2/{project_id}/os-availability-zone", list_zones)
