"""The block-storage endpoint's per-project documents: volume types, limits,
quota sets and availability zones, as Cinder serves them (``openstack limits
show --absolute``, ``quota show`` and ``availability zone list`` read them).

Quotas are the compute API's (``services.api.quotas``): Cinder's ``volumes``
and ``gigabytes`` are Nimbus's maxTotalVolumes and maxTotalVolumeGigabytes,
counted the same way (every live volume, whatever its status). Nimbus limits
nothing else about volumes: ``snapshots`` and ``per_volume_gigabytes`` are
unlimited (-1), and there are no backups or groups to make (0). A project reads
its own quotas (another project's is 403, Cinder's policy), an admin any
project's; an admin may set ``volumes`` and ``gigabytes`` (the same per-project
quotas ``manage set-quota`` sets) or revert them to the defaults (DELETE).

Zones are the compute API's (those of the compute hosts; a volume goes to one of
them), in Cinder's shape without ``hosts``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.api import quotas
from services.api.cinder import views
from services.api.cinder.common import json_body
from services.api.keys import POOL, SETTINGS
from services.api.queries import quotas as quota_q
from services.api.queries import volumes as q
from services.api.resources import volume_types
from services.api.resources.common import principal
from services.api.side_apps import json_response
from services.api.views import availability_zones as zone_views
from shared.db import hosts
from shared.errors import BadRequest, Forbidden, VolumeTypeNotFound

SETTABLE = {"volumes": "maxTotalVolumes", "gigabytes": "maxTotalVolumeGigabytes"}
"""Cinder's quota names that are Nimbus quotas, and the limit each is."""

FIXED = {"snapshots": quotas.UNLIMITED, "per_volume_gigabytes": quotas.UNLIMITED,
         "backups": 0, "backup_gigabytes": 0, "groups": 0}
"""Cinder's quota names Nimbus does not count: what each is, always."""

MAX_QUOTA = 2**31 - 1


# ---- types ----------------------------------------------------------------------

async def list_types(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        rows = await q.volume_types(conn)
    return json_response({"volume_types": [views.volume_type(r) for r in rows]})


async def show_type(request: web.Request) -> web.Response:
    raw = request.match_info["type_id"]
    if raw == "default":
        # A volume created without a type stays untyped: there is no default type.
        raise VolumeTypeNotFound("default")
    return json_response({"volume_type": views.volume_type(await volume_types.load_type(request))})


# ---- limits and quotas --------------------------------------------------------------

async def _quota_values(conn: Any, project_id: str, *, defaults: bool = False) -> dict[str, int]:
    limits = (dict(quotas.DEFAULT_LIMITS) if defaults
              else await quotas.absolute_limits(conn, project_id))
    return {**{name: limits[key] for name, key in SETTABLE.items()}, **FIXED}


async def _in_use(conn: Any, project_id: str) -> dict[str, int]:
    volumes, gigabytes = await quotas.volume_usage(conn, project_id)
    snapshots = len(await q.filtered_snapshots(conn, project_id, name=None, status=None,
                                                volume_id=None))
    return {"volumes": volumes, "gigabytes": gigabytes, "snapshots": snapshots}


async def show_limits(request: web.Request) -> web.Response:
    pid = principal(request).project_id
    async with request.app[POOL].acquire() as conn:
        quota = await _quota_values(conn, pid)
        used = await _in_use(conn, pid)
    absolute = {
        "maxTotalVolumes": quota["volumes"], "maxTotalVolumeGigabytes": quota["gigabytes"],
        "maxTotalSnapshots": quota["snapshots"], "maxTotalBackups": quota["backups"],
        "maxTotalBackupGigabytes": quota["backup_gigabytes"],
        "totalVolumesUsed": used["volumes"], "totalGigabytesUsed": used["gigabytes"],
        "totalSnapshotsUsed": used["snapshots"], "totalBackupsUsed": 0,
        "totalBackupGigabytesUsed": 0,
    }
    return json_response({"limits": {"rate": [], "absolute": absolute}})


def _target(request: web.Request) -> str:
    """The project a quota request names: the caller's, or any for an admin."""
    who = principal(request)
    target = request.match_info["target"]
    if target not in (who.project_id, who.project_name) and not who.is_admin:
        raise Forbidden(f"Policy doesn't allow reading the quotas of project {target[:80]}.")
    return who.project_id if target == who.project_name else target


def _flag(raw: str | None) -> bool:
    return raw is not None and raw.strip().lower() in ("true", "1", "yes", "on")


async def show_quotas(request: web.Request) -> web.Response:
    target = _target(request)
    async with request.app[POOL].acquire() as conn:
        values: dict[str, Any] = await _quota_values(conn, target)
        if _flag(request.query.get("usage")):
            used = await _in_use(conn, target)
            values = {k: {"limit": v, "in_use": used.get(k, 0), "reserved": 0, "allocated": 0}
                      for k, v in values.items()}
    return json_response({"quota_set": {"id": target, **values}})


async def show_default_quotas(request: web.Request) -> web.Response:
    target = _target(request)
    async with request.app[POOL].acquire() as conn:
        values = await _quota_values(conn, target, defaults=True)
    return json_response({"quota_set": {"id": target, **values}})


def _admin(request: web.Request) -> None:
    if not principal(request).is_admin:
        raise Forbidden("Policy doesn't allow changing quotas: only an admin may.")


def _quota(name: str, value: object) -> int:
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 12:
        number = int(value.strip())
    if number is None or not -1 <= number <= MAX_QUOTA:
        raise BadRequest(f"Invalid input for quota {name}: {str(value)[:40]!r} must be an "
                         f"integer from -1 (unlimited) to {MAX_QUOTA}.")
    return number


async def update_quotas(request: web.Request) -> web.Response:
    _admin(request)
    target = request.match_info["target"]
    fields = await json_body(request, "quota_set")
    # Cinder's own switches and echoes of the target, which change nothing here.
    for ignored in ("tenant_id", "id", "skip_validation"):
        fields.pop(ignored, None)
    unknown = sorted(set(fields) - set(SETTABLE))
    if unknown:
        raise BadRequest(f"Bad key(s) in quota set: {', '.join(k[:40] for k in unknown)}; "
                         f"this cloud's settable volume quotas are {', '.join(SETTABLE)}.")
    values = {name: _quota(name, value) for name, value in fields.items()}
    async with request.app[POOL].acquire() as conn, conn.transaction():
        for name, value in values.items():
            await quota_q.set_quota(conn, target, SETTABLE[name], value)
        shown = await _quota_values(conn, target)
    return json_response({"quota_set": shown})


async def revert_quotas(request: web.Request) -> web.Response:
    _admin(request)
    target = request.match_info["target"]
    async with request.app[POOL].acquire() as conn, conn.transaction():
        for key in SETTABLE.values():
            await quota_q.set_quota(conn, target, key, None)
    return web.Response(status=200)


# ---- zones ---------------------------------------------------------------------

async def list_zones(request: web.Request) -> web.Response:
    down_after = request.app[SETTINGS].api.service_down_time_s
    async with request.app[POOL].acquire() as conn:
        every = await hosts.all_hosts(conn, down_after)
    zones = [{"zoneName": z["zoneName"], "zoneState": z["zoneState"]}
             for z in zone_views.zones(every)]
    return json_response({"availabilityZoneInfo": zones})


def setup(router: web.UrlDispatcher) -> None:
    base = "/v3/{project_id}"
    router.add_get(base + "/types", list_types)
    router.add_get(base + "/types/{type_id}", show_type)
    router.add_get(base + "/limits", show_limits)
    router.add_get(base + "/os-quota-sets/{target}", show_quotas)
    router.add_get(base + "/os-quota-sets/{target}/defaults", show_default_quotas)
    router.add_put(base + "/os-quota-sets/{target}", update_quotas)
    router.add_delete(base + "/os-quota-sets/{target}", revert_quotas)
    router.add_get(base + "/os-availability-zone", list_zones)
