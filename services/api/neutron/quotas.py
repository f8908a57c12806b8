"""Neutron's quotas (``GET /v2.0/quotas/{project_id}``, ``.../details``,
``.../default``), read from Nimbus's own limits (``services.api.quotas``):
``openstack quota show`` asks the network endpoint for these beside compute's.

* floatingip is maxTotalFloatingIps, security_group maxSecurityGroups,
  security_group_rule maxSecurityGroupRules. Nimbus counts rules per group, as
  Nova did (Neutron counted them per project): the limit shown is one group's,
  the ``used`` of the details every rule of the project.
* network, subnet and port have no limit in Nimbus (-1); router is 0, since
  Nimbus makes no routers.
* A project may read its own quotas; another project's is 403 unless the
  caller is an admin, as Neutron's policy.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from services.api import quotas
from services.api.keys import POOL
from services.api.neutron.common import add
from services.api.queries import floating_ips as floating_ip_q
from services.api.queries import networks as network_q
from services.api.queries import quotas as quota_q
from services.api.queries import security_groups as group_q
from services.api.resources.common import principal
from services.api.side_apps import json_response
from shared.errors import Forbidden

_FIXED = {"network": -1, "subnet": -1, "port": -1, "router": 0}


def _limits(limits: dict[str, int]) -> dict[str, int]:
    return {"floatingip": limits["maxTotalFloatingIps"],
            "security_group": limits["maxSecurityGroups"],
            "security_group_rule": limits["maxSecurityGroupRules"], **_FIXED}


async def _used(conn: asyncpg.Connection, project_id: str) -> dict[str, int]:
    groups = await group_q.list_for_project(conn, project_id)
    rules = await group_q.rules_of(conn, [g["id"] for g in groups])
    networks = len(await network_q.of_project(conn, project_id))
    return {"floatingip": await floating_ip_q.used(conn, project_id),
            "security_group": await quota_q.security_groups_used(conn, project_id),
            "security_group_rule": sum(len(r) for r in rules.values()),
            "network": networks, "subnet": await network_q.subnet_count(conn, project_id),
            "port": len(await network_q.ports(conn, project_id)), "router": 0}


def _project(request: web.Request) -> str:
    who = principal(request)
    project = request.match_info["tenant_id"]
    if project != who.project_id and not who.is_admin:
        raise Forbidden("Non-admin is not authorised to access quotas for another tenant.")
    return project


async def show_quota(request: web.Request) -> web.Response:
    project = _project(request)
    async with request.app[POOL].acquire() as conn:
        limits = await quotas.absolute_limits(conn, project)
    return json_response({"quota": _limits(limits)})


async def show_quota_details(request: web.Request) -> web.Response:
    project = _project(request)
    async with request.app[POOL].acquire() as conn:
        limits = _limits(await quotas.absolute_limits(conn, project))
        used = await _used(conn, project)
    body: dict[str, Any] = {k: {"limit": v, "used": used[k], "reserved": 0}
                            for k, v in limits.items()}
    return json_response({"quota": body})


async def show_default_quota(request: web.Request) -> web.Response:
    _project(request)
    return json_response({"quota": _limits(quotas.DEFAULT_LIMITS)})


def setup(router: web.UrlDispatcher) -> None:
    add(router, "GET", "/v2.0/quotas/{tenant_id}/details", show_quota_details)
    add(router, "GET", "/v2.0/quotas/{tenant_id}/default", show_default_quota)
    add(router, "GET", "/v2.0/quotas/{tenant_id}", show_quota)
