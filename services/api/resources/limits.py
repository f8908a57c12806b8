"""Limits (section 4.4.1.4) with the used values of os-used-limits (section 4.4.12).

``absolute`` holds the project's limits and what its live servers and security
groups use; ``rate`` holds its rate limits as every API process counts them (shared in PostgreSQL), in
Nova's shape (``{"uri", "regex", "limit": [{"verb", "value", "remaining",
"unit", "next-available"}]}``), which the spec's examples leave empty.
"""

from __future__ import annotations

from aiohttp import web

from services.api import quotas
from services.api.keys import POOL
from services.api.ratelimit import project_status, rate_view
from services.api.representation import View, represented, route
from services.api.resources.common import principal


@represented
async def show_limits(request: web.Request) -> View:
    pid = principal(request).project_id
    async with request.app[POOL].acquire() as conn:
        absolute = {**await quotas.absolute_limits(conn, pid),
                    **await quotas.used_limits(conn, pid)}
    rate = rate_view(await project_status(request, pid))
    # Alphabetical, as section 4.4.12's example (4.4.1.4's order is a dict's).
    return View({"limits": {"rate": rate, "absolute": dict(sorted(absolute.items()))}})


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/limits", show_limits)
