"""Per-project limits (section 3.8.1 / 4.4.1.4) and the quota checks of create server
and create volume.

Defaults are the values of the spec's example; a project may have its own
(``project_quotas``, set by ``manage set-quota``). ``absolute_limits`` is what
handlers consult for the limits that are checked against a request's body
(maxServerMeta, maxImageMeta, maxPersonality, ...).

Instances, cores and RAM are counted, never stored: ``claim_servers`` takes a
per-project advisory lock inside the caller's transaction, counts the
project's live servers and says how many more fit; the caller inserts them
before committing. Two creates of one project therefore never both see room
that only one of them may take, in one API process or many. Volumes and their
gigabytes (section 3.8.1's ``volumes`` and ``gigabytes``) are counted the same
way from the project's live volumes, under the same lock (``claim_volume``).

A quota fault is ``shared.errors.QuotaExceeded``: 413 overLimit with
``Retry-After: 0`` (why 0 is said there, once for every quota).
"""

from __future__ import annotations

from typing import NamedTuple

import asyncpg

from services.api.queries import floating_ips as floating_ip_q
from services.api.queries import quotas as q
from shared.errors import QuotaExceeded

# The spec's example in 4.4.1.4 (and the contract's defaults). -1 is unlimited.
DEFAULT_LIMITS: dict[str, int] = {
    "maxServerMeta": 50,
    "maxPersonality": 5,
    "maxImageMeta": 50,
    "maxPersonalitySize": 10240,
    "maxSecurityGroupRules": 20,
    "maxTotalKeypairs": 100,
    "maxSecurityGroups": 10,
    "maxTotalCores": -1,
    "maxTotalFloatingIps": 10,
    "maxTotalInstances": 40,
    "maxTotalRAMSize": 15360,
    # Section 3.8.1's volumes and gigabytes: the spec's examples show neither, so
    # Cinder's defaults (10 volumes, 1000 GB), under the names Nova's limits gave them.
    "maxTotalVolumes": 10,
    "maxTotalVolumeGigabytes": 1000,
}

UNLIMITED = -1

# A ceiling on one request, whatever the quota: with unlimited instances a
# max_count of a million would otherwise insert and cast a million builds
# before answering.
MAX_SERVERS_PER_REQUEST = 500


class Usage(NamedTuple):
    """What a project's live servers hold."""

    instances: int
    cores: int
    ram_mb: int


async def absolute_limits(conn: asyncpg.Connection, project_id: str) -> dict[str, int]:
    """The project's limits: its own where set, the defaults elsewhere."""
    limits = dict(DEFAULT_LIMITS)
    for resource, value in (await q.quotas(conn, project_id)).items():
        if resource in limits:
            limits[resource] = value
    return limits


async def usage(conn: asyncpg.Connection, project_id: str) -> Usage:
    row = await q.usage(conn, project_id)
    return Usage(int(row["instances"]), int(row["cores"]), int(row["ram_mb"]))


async def used_limits(conn: asyncpg.Connection, project_id: str) -> dict[str, int]:
    """The os-used-limits values of section 4.4.12."""
    used = await usage(conn, project_id)
    volumes, gigabytes = await volume_usage(conn, project_id)
    return {
        "totalRAMUsed": used.ram_mb,
        "totalInstancesUsed": used.instances,
        "totalCoresUsed": used.cores,
        "totalFloatingIpsUsed": await floating_ip_q.used(conn, project_id),
        "totalSecurityGroupsUsed": await q.security_groups_used(conn, project_id),
        # Nova's used-limits names for volumes (Folsom's os-used-limits).
        "totalVolumesUsed": volumes,
        "totalVolumeGigabytesUsed": gigabytes,
    }


# (resource name in messages, limit key, usage field), in the order Nova
# reported them when several are exceeded.
_COUNTED = (("instances", "maxTotalInstances", "instances"),
            ("cores", "maxTotalCores", "cores"),
            ("ram", "maxTotalRAMSize", "ram_mb"))


def servers_that_fit(limits: dict[str, int], used: Usage, *, vcpus: int,
                     ram_mb: int) -> int | None:
    """How many more servers of this size the quota allows; None if unlimited."""
    per = {"instances": 1, "cores": vcpus, "ram_mb": ram_mb}
    fit: int | None = None
    for _, key, field in _COUNTED:
        limit = limits[key]
        if limit == UNLIMITED or per[field] <= 0:
            continue
        room = max(0, limit - getattr(used, field)) // per[field]
        fit = room if fit is None else min(fit, room)
    return fit


def servers_to_create(limits: dict[str, int], used: Usage, *, vcpus: int, ram_mb: int,
                      min_count: int, max_count: int) -> int:
    """How many servers a create of ``min_count``..``max_count`` makes.

    Raises:
        QuotaExceeded: fewer than ``min_count`` fit (nothing may then be created).
    """
    if min_count > MAX_SERVERS_PER_REQUEST:
        raise QuotaExceeded(f"Quota exceeded for instances: Requested {min_count}, but at "
                            f"most {MAX_SERVERS_PER_REQUEST} servers are created per request.",
                            details=f"Ask for at most {MAX_SERVERS_PER_REQUEST} servers at once.")
    fit = servers_that_fit(limits, used, vcpus=vcpus, ram_mb=ram_mb)
    if fit is not None and fit < min_count:
        raise _exceeded(limits, used, vcpus=vcpus, ram_mb=ram_mb, count=min_count, fit=fit)
    return min(max_count, MAX_SERVERS_PER_REQUEST, fit if fit is not None else max_count)


def _exceeded(limits: dict[str, int], used: Usage, *, vcpus: int, ram_mb: int, count: int,
              fit: int) -> QuotaExceeded:
    # Nova's TooManyInstances: "Quota exceeded for <overs>: Requested <req>, but
    # already used <used> of <allowed> <resource>", the numbers of the first
    # resource exceeded.
    per = {"instances": 1, "cores": vcpus, "ram_mb": ram_mb}
    overs = [(name, key, field) for name, key, field in _COUNTED
             if limits[key] != UNLIMITED and getattr(used, field) + count * per[field] > limits[key]]
    name, key, field = overs[0]
    message = (f"Quota exceeded for {', '.join(o[0] for o in overs)}: Requested "
               f"{count * per[field]}, but already used {getattr(used, field)} of "
               f"{limits[key]} {name}")
    details = (f"Can only run {fit} more instance(s) of this type." if fit
               else "Cannot run any more instances of this type.")
    return QuotaExceeded(message, details=details)


async def claim_servers(conn: asyncpg.Connection, project_id: str, limits: dict[str, int], *,
                        vcpus: int, ram_mb: int, min_count: int = 1, max_count: int = 1) -> int:
    """How many servers a create makes (``servers_to_create``), from the project's
    usage as it is now, read without waiting for the project's quota lock.

    The caller's transaction then writes those servers, their ``servers`` rows
    last, and calls :func:`confirm_servers` just before it commits. The lock is
    taken by the first of those rows (migration 0017's trigger) and held to the
    commit: a few statements, where taking it here would hold it across the
    whole write and make every other create of the project wait that long.
    """
    return servers_to_create(limits, await usage(conn, project_id), vcpus=vcpus,
                             ram_mb=ram_mb, min_count=min_count, max_count=max_count)


async def confirm_servers(conn: asyncpg.Connection, project_id: str, *, vcpus: int,
                          ram_mb: int, count: int) -> None:
    """Raise QuotaExceeded unless the ``count`` servers just inserted by this
    transaction fit the project's quota, holding its lock until the transaction ends.

    A concurrent create that committed after :func:`claim_servers` read the usage
    is counted here: the second of two creates racing for the last slot is refused
    (and rolled back), never both let through.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("confirm_servers must run inside the transaction that inserts")
    row = await q.lock_project(conn, project_id)  # counts this transaction's servers
    limits = await absolute_limits(conn, project_id)  # a limit set meanwhile applies
    before = Usage(int(row["instances"]) - count, int(row["cores"]) - count * vcpus,
                   int(row["ram_mb"]) - count * ram_mb)
    fit = servers_that_fit(limits, before, vcpus=vcpus, ram_mb=ram_mb)
    if fit is not None and fit < count:
        raise _exceeded(limits, before, vcpus=vcpus, ram_mb=ram_mb, count=count, fit=fit)


# ---- volumes --------------------------------------------------------------

async def volume_usage(conn: asyncpg.Connection, project_id: str) -> tuple[int, int]:
    """How many live volumes the project has, and their gigabytes."""
    row = await q.volume_usage(conn, project_id)
    return int(row["volumes"]), int(row["gigabytes"])


def volume_overage(limits: dict[str, int], used: tuple[int, int],
                   size_gb: int) -> QuotaExceeded | None:
    """The fault for one more volume of ``size_gb`` when the project's quota has no
    room for it; None when it fits. Worded as the instance quota's fault."""
    wanted = {"volumes": 1, "gigabytes": size_gb}
    have = dict(zip(("volumes", "gigabytes"), used))
    limit_of = {"volumes": limits["maxTotalVolumes"],
                "gigabytes": limits["maxTotalVolumeGigabytes"]}
    overs = [name for name in ("volumes", "gigabytes")
             if limit_of[name] != UNLIMITED and have[name] + wanted[name] > limit_of[name]]
    if not overs:
        return None
    first = overs[0]
    message = (f"Quota exceeded for {', '.join(overs)}: Requested {wanted[first]}, but already "
               f"used {have[first]} of {limit_of[first]} {first}")
    if first == "volumes":
        details = "Cannot create any more volumes; delete some, or ask for a higher quota."
    else:
        room = max(0, limit_of["gigabytes"] - have["gigabytes"])
        details = f"Only {room} GB of volume quota are left."
    return QuotaExceeded(message, details=details)


async def claim_volume(conn: asyncpg.Connection, project_id: str, size_gb: int) -> None:
    """Lock the project's quota and raise QuotaExceeded unless one more volume of
    ``size_gb`` fits. Must run inside the transaction that inserts the volume
    (see ``claim_servers``)."""
    if not conn.is_in_transaction():
        raise RuntimeError("claim_volume must run inside the transaction that inserts")
    await q.lock_project(conn, project_id)
    limits = await absolute_limits(conn, project_id)
    fault = volume_overage(limits, await volume_usage(conn, project_id), size_gb)
    if fault is not None:
        raise fault
