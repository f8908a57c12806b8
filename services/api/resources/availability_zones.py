"""Availability zones: list (section 4.4.2.1).

The zones are those of the compute agents that have ever reported
(``compute_hosts``); whether one is available is decided from the hosts'
heartbeats with the API's ``service_down_time_s``, the same measure delete uses
to decide a host is down. See ``views.availability_zones`` for the rules.
"""

from __future__ import annotations

from aiohttp import web

from services.api.keys import POOL, SETTINGS
from services.api.representation import View, represented, route
from services.api.views import availability_zones as views
from shared.db import hosts


@represented
async def list_zones(request: web.Request) -> View:
    down_after = request.app[SETTINGS].api.service_down_time_s
    async with request.app[POOL].acquire() as conn:
        every = await hosts.all_hosts(conn, down_after)
    return View({"availabilityZoneInfo": views.zones(every)})


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/os-availability-zone", list_zones)
