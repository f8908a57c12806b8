"""os-simple-tenant-usage (Nova's SimpleTenantUsage extension): a project's usage
over a window (``?start=&end=``), and every project's for admins.

Policies as Nova's: show is ``admin_or_owner`` (another project's usage is 403
to a member), the list is admin only. ``start`` and ``end`` are read in the
formats Nova read (``2014-01-31T10:00:00``, with ``.ffffff`` or a space instead
of the ``T``; a trailing ``Z`` or offset is taken too, as clients send UTC);
they are UTC. Missing, each is now, as in Nova. A start after the end, or a
date in no format, is 400 and reads nothing. The list names only projects with
servers in the window, and shows each one's servers when ``detailed=1`` (or
``True``, as openstacksdk sends it). See ``views.usage`` for the arithmetic.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiohttp import web

from services.api.keys import POOL
from services.api.queries import usage as q
from services.api.representation import View, represented, route
from services.api.resources.common import principal, require_admin
from services.api.views import usage as views
from shared.errors import BadRequest, Forbidden

_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})?")


def parse_time(text: str | None, now: datetime) -> datetime:
    """A window bound as UTC; ``now`` when absent; 400 when unreadable."""
    if text is None:
        return now
    value = text.strip()
    try:
        if not _DATE_TIME.fullmatch(value):
            raise ValueError(value)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest("Datetime is in invalid format") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def window(request: web.Request) -> tuple[datetime, datetime, datetime]:
    now = datetime.now(UTC)
    start = parse_time(request.query.get("start"), now)
    stop = parse_time(request.query.get("end"), now)
    if start > stop:
        raise BadRequest("Invalid start time. The start time cannot occur after the end time.")
    return start, stop, now


@represented
async def show_usage(request: web.Request) -> View:
    tenant_id = request.match_info["tenant_id"]
    who = principal(request)
    if tenant_id != who.project_id and not who.is_admin:
        raise Forbidden("Policy doesn't allow compute_extension:simple_tenant_usage:show "
                        "to be performed.")
    start, stop, now = window(request)
    async with request.app[POOL].acquire() as conn:
        rows = await q.servers_in_window(conn, start, stop, tenant_id)
    return View({"tenant_usage": views.tenant_usage(tenant_id, rows, start, stop, now,
                                                    detailed=True)})


@represented
async def list_usage(request: web.Request) -> View:
    require_admin(request, "compute_extension:simple_tenant_usage:list")
    start, stop, now = window(request)
    # Nova read only "1"; openstacksdk (and so `openstack usage list`) sends "True".
    detailed = request.query.get("detailed", "").strip().lower() in ("1", "true")
    async with request.app[POOL].acquire() as conn:
        rows = await q.servers_in_window(conn, start, stop, None)
    by_project: dict[str, list] = {}
    for row in rows:
        by_project.setdefault(row["project_id"], []).append(row)
    return View({"tenant_usages": [
        views.tenant_usage(pid, servers, start, stop, now, detailed=detailed)
        for pid, servers in by_project.items()]})


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/os-simple-tenant-usage", list_usage)
    route(router, "GET", "/v2/{project_id}/os-simple-tenant-usage/{tenant_id}", show_usage)
