"""os-aggregates, list only: Nimbus has no host aggregates, so the list is empty.

``openstack hypervisor show`` lists the aggregates to say which ones hold the
host, and fails without this. Admin only, as Nova's policy. Creating
aggregates is not offered, so the extension is not listed in /extensions.
"""

from __future__ import annotations

from aiohttp import web

from services.api.representation import View, represented, route
from services.api.resources.common import require_admin


@represented
async def list_aggregates(request: web.Request) -> View:
    require_admin(request, "compute_extension:aggregates")
    return View({"aggregates": []})


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/os-aggregates", list_aggregates)
