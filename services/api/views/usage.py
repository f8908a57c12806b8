"""os-simple-tenant-usage views: what servers used during a window, as Nova's
SimpleTenantUsage controller computed it (Icehouse/Juno).

A server is charged from ``max(launched_at, start)`` to ``min(deleted_at,
stop)``, or to ``min(now, stop)`` while it lives; ``hours`` is that span in hours, and the
totals are the flavor's vCPUs, RAM and disk (root plus ephemeral) times the
hours, summed. The flavor is the server's own snapshot, so a flavor changed or
deleted since does not rewrite history. ``uptime`` (seconds) runs from launch to
deletion, or to now for a live server. Two departures from Nova: Nova charged a
live server up to the window's end even when that end lay in the future
(``openstack usage show`` asks up to tomorrow, so a server booted a minute ago
showed a day), which is no usage; and its seconds carried a bug (it divided
microseconds by 100,000); this computes exact hours up to now. Times are written as Nova
wrote them (``views.links.microtime``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from services.api.views.links import microtime


def hours(launched_at: datetime, deleted_at: datetime | None, start: datetime,
          stop: datetime, now: datetime) -> float:
    """Hours a server launched at ``launched_at`` (deleted at ``deleted_at``, or
    still running at ``now``) ran within ``start``..``stop``; 0 outside it."""
    if deleted_at is not None and deleted_at < start:
        return 0.0
    if launched_at > stop:
        return 0.0
    end = min(stop, deleted_at if deleted_at is not None else now)
    return max(0.0, (end - max(launched_at, start)).total_seconds() / 3600.0)


def server_usage(row: Any, start: datetime, stop: datetime, now: datetime) -> dict[str, Any]:
    flavor = row["flavor"]
    ended = row["deleted_at"]
    span = (ended or now) - row["launched_at"]
    return {
        "instance_id": row["id"],
        "name": row["name"],
        "hours": hours(row["launched_at"], ended, start, stop, now),
        "memory_mb": flavor["ram_mb"],
        "local_gb": flavor["disk_gb"] + flavor["ephemeral_gb"],
        "vcpus": flavor["vcpus"],
        "flavor": flavor["name"],
        "tenant_id": row["project_id"],
        "started_at": microtime(row["launched_at"]),
        "ended_at": microtime(ended),
        "state": "terminated" if ended is not None else row["vm_state"],
        "uptime": int(span.total_seconds()),
    }


def tenant_usage(tenant_id: str, rows: Iterable[Any], start: datetime, stop: datetime,
                 now: datetime, *, detailed: bool) -> dict[str, Any]:
    """One project's usage over the window (``rows``: its servers in the window)."""
    usages = [server_usage(r, start, stop, now) for r in rows]
    out: dict[str, Any] = {
        "tenant_id": tenant_id,
        "total_local_gb_usage": sum(u["local_gb"] * u["hours"] for u in usages),
        "total_vcpus_usage": sum(u["vcpus"] * u["hours"] for u in usages),
        "total_memory_mb_usage": sum(u["memory_mb"] * u["hours"] for u in usages),
        "total_hours": sum(u["hours"] for u in usages),
        "start": microtime(start),
        "stop": microtime(stop),
    }
    if detailed:
        out["server_usages"] = usages
    return out
