"""os-quota-sets (Nova's Quotas extension, Icehouse/Juno): a project's quotas under
Nova's names, over the same limits ``/limits`` shows and creates enforce.

Nimbus keeps quotas as the absolute limits of section 4.4.1.4 (``project_quotas``
holds a project's own, ``services.api.quotas.DEFAULT_LIMITS`` the rest), so this
resource is only a second spelling of them: ``QUOTA_LIMITS`` maps each of Nova's
quota names to the limit(s) it stands for. ``metadata_items`` stands for both
``maxServerMeta`` and ``maxImageMeta`` (Nova derived both limits from that one
quota), and is read from ``maxServerMeta``. Two quotas Nova listed have no limit
of their own here: ``fixed_ips`` (Nimbus gives each port one address from the
project's private network, unlimited) and ``injected_file_path_bytes`` (server
create refuses paths over 255 bytes, Nova's default); they are shown with those
values and a PUT may only repeat them.

Policies as Nova's: anyone may read their own project's quotas and the
defaults; reading another project's is 403 unless admin
(``authorize_project_context``); update and delete are admin only.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.api import quotas
from services.api.keys import POOL
from services.api.queries import quotas as q
from services.api.representation import View, parse_body, represented, route
from services.api.resources.common import principal, require_admin
from shared.errors import BadRequest, Forbidden, NotFound

QUOTA_LIMITS: dict[str, tuple[str, ...]] = {
    "cores": ("maxTotalCores",),
    "floating_ips": ("maxTotalFloatingIps",),
    "injected_file_content_bytes": ("maxPersonalitySize",),
    "injected_files": ("maxPersonality",),
    "instances": ("maxTotalInstances",),
    "key_pairs": ("maxTotalKeypairs",),
    "metadata_items": ("maxServerMeta", "maxImageMeta"),
    "ram": ("maxTotalRAMSize",),
    "security_group_rules": ("maxSecurityGroupRules",),
    "security_groups": ("maxSecurityGroups",),
}
"""Nova quota name -> the absolute limits it sets (the first is the one shown)."""

FIXED: dict[str, int] = {"fixed_ips": -1, "injected_file_path_bytes": 255}
"""Quotas Nova listed that Nimbus does not let an operator change (see above)."""

# Keys a PUT body may carry that are no quota (Nova's NON_QUOTA_KEYS).
_NON_QUOTA_KEYS = frozenset({"id", "tenant_id", "force"})

MAX_INT = 0x7FFFFFFF
"""Nova's db.MAX_INT, and the largest hard_limit the column holds."""

# Nova quota name -> the used-limits key counting it, for the in-use check of
# update and for the detail view; the rest count as 0 in use (key pairs are
# per user and rules per group in Nova, so its detail showed 0 for them too).
_USED_BY: dict[str, str] = {
    "cores": "totalCoresUsed",
    "floating_ips": "totalFloatingIpsUsed",
    "instances": "totalInstancesUsed",
    "ram": "totalRAMUsed",
    "security_groups": "totalSecurityGroupsUsed",
}


def quota_set(limits: dict[str, int]) -> dict[str, int]:
    """Nova's quota names and values for a project's absolute limits."""
    values = {name: limits[keys[0]] for name, keys in QUOTA_LIMITS.items()}
    values.update(FIXED)
    return dict(sorted(values.items()))


def parse_update(body: dict[str, Any]) -> dict[str, int]:
    """The quotas a PUT body sets, checked as Nova checked them (400 otherwise):
    known names only, each value an integer (or a string of one) from -1 to MAX_INT."""
    values = body.get("quota_set")
    if not isinstance(values, dict):
        raise BadRequest("The request body must hold a quota_set object.")
    bad = sorted(k for k in values if k not in QUOTA_LIMITS and k not in FIXED
                 and k not in _NON_QUOTA_KEYS)
    if bad:
        raise BadRequest(f"Bad key(s) {', '.join(bad)} in quota_set")
    wanted: dict[str, int] = {}
    for key, raw in values.items():
        if key in _NON_QUOTA_KEYS:
            continue
        value = _integer(key, raw)
        if key in FIXED and value != FIXED[key]:
            raise BadRequest(f"Quota {key} is fixed at {FIXED[key]} in this cloud.")
        if key in QUOTA_LIMITS:
            wanted[key] = value
    return wanted


def _integer(key: str, raw: object) -> int:
    # Nova's utils.validate_integer: int(str(value)), so "10" is 10 and 10.5 is not.
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise BadRequest(f"{key} must be an integer.")
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise BadRequest(f"{key} must be an integer.") from None
    if value < -1:
        raise BadRequest(f"{key} must be >= -1.")
    if value > MAX_INT:
        raise BadRequest(f"{key} must be <= {MAX_INT}.")
    return value


def _check_project_context(request: web.Request, tenant_id: str) -> None:
    who = principal(request)
    if tenant_id != who.project_id and not who.is_admin:
        raise Forbidden("Not authorized.")  # Nova's NotAuthorized from authorize_project_context


@represented
async def show_quotas(request: web.Request) -> View:
    tenant_id = request.match_info["tenant_id"]
    _check_project_context(request, tenant_id)
    async with request.app[POOL].acquire() as conn:
        limits = await quotas.absolute_limits(conn, tenant_id)
    return View({"quota_set": {"id": tenant_id, **quota_set(limits)}})


@represented
async def show_defaults(request: web.Request) -> View:
    tenant_id = request.match_info["tenant_id"]
    return View({"quota_set": {"id": tenant_id, **quota_set(quotas.DEFAULT_LIMITS)}})


@represented
async def show_detail(request: web.Request) -> View:
    """Each quota with what the project uses of it (Nova's ``detail``: in_use,
    reserved, limit). Nimbus counts usage from live rows and reserves nothing."""
    tenant_id = request.match_info["tenant_id"]
    _check_project_context(request, tenant_id)
    async with request.app[POOL].acquire() as conn:
        limits = await quotas.absolute_limits(conn, tenant_id)
        used = await quotas.used_limits(conn, tenant_id)
    detail: dict[str, Any] = {
        name: {"in_use": used[_USED_BY[name]] if name in _USED_BY else 0, "limit": limit,
               "reserved": 0}
        for name, limit in quota_set(limits).items()}
    return View({"quota_set": {"id": tenant_id, **detail}})


@represented
async def update_quotas(request: web.Request) -> View:
    """Set the named quotas (admin). Like Nova without ``force``, a limit below what
    the project already uses is refused, and nothing is changed by a refused body."""
    require_admin(request, "compute_extension:quotas:update")
    tenant_id = request.match_info["tenant_id"]
    body = await parse_body(request, root="quota_set")
    wanted = parse_update(body)
    force = str(body["quota_set"].get("force", "")).lower() in ("true", "1", "yes")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if not await q.project_exists(conn, tenant_id):
            raise NotFound(f"Project {tenant_id} could not be found.")
        # The quota lock: a create of the project either counts before this
        # check or sees the new limit.
        await q.lock_project(conn, tenant_id)
        if not force:
            used = await quotas.used_limits(conn, tenant_id)
            for name, value in wanted.items():
                in_use = used.get(_USED_BY.get(name, ""), 0)
                if value != quotas.UNLIMITED and value < in_use:
                    raise BadRequest(f"Quota value {value} for {name} are less than already "
                                     f"used and reserved {in_use}")
        for name, value in wanted.items():
            for limit in QUOTA_LIMITS[name]:
                await q.set_quota(conn, tenant_id, limit, value)
        limits = await quotas.absolute_limits(conn, tenant_id)
    # Nova's update answered the quota set without its id.
    return View({"quota_set": quota_set(limits)})


@represented
async def delete_quotas(request: web.Request) -> View:
    """Every quota of the project back to the default (admin); 202 as Nova."""
    require_admin(request, "compute_extension:quotas:delete")
    tenant_id = request.match_info["tenant_id"]
    async with request.app[POOL].acquire() as conn, conn.transaction():
        for keys in QUOTA_LIMITS.values():
            for limit in keys:
                await q.set_quota(conn, tenant_id, limit, None)
    return View(status=202)


def setup(router: web.UrlDispatcher) -> None:
    base = "/v2/{project_id}/os-quota-sets/{tenant_id}"
    route(router, "GET", base + "/defaults", show_defaults)
    route(router, "GET", base + "/detail", show_detail)
    route(router, "GET", base, show_quotas)
    route(router, "PUT", base, update_quotas)
    route(router, "DELETE", base, delete_quotas)
