"""Flavor views (section 4.4.1.32-34, with OS-FLV-EXT-DATA, rxtx and swap)."""

from __future__ import annotations

from typing import Any

from services.api.views.links import resource_links


def brief(row: Any, base: str, project_id: str) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"],
            "links": resource_links(base, project_id, "flavors", row["id"])}


def detail(row: Any, base: str, project_id: str) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "ram": row["ram_mb"], "disk": row["disk_gb"],
        "vcpus": row["vcpus"],
        # The spec shows an empty string for a flavor without swap.
        "swap": row["swap_mb"] or "",
        "rxtx_factor": row["rxtx_factor"],
        "OS-FLV-EXT-DATA:ephemeral": row["ephemeral_gb"],
        "links": resource_links(base, project_id, "flavors", row["id"]),
    }
