"""Image views (section 4.4.1.22-24, with OS-EXT-IMG-SIZE); a deleted image (listed
by changes-since) shows status DELETED (section 3.7)."""

from __future__ import annotations

from typing import Any

from services.api.views.links import isotime, resource_links


def brief(row: Any, base: str, project_id: str) -> dict[str, Any]:
    return {"id": str(row["id"]), "name": row["name"],
            "links": resource_links(base, project_id, "images", row["id"])}


def detail(row: Any, base: str, project_id: str) -> dict[str, Any]:
    status = "DELETED" if row["deleted_at"] is not None else row["status"]
    view: dict[str, Any] = {
        "id": str(row["id"]), "name": row["name"], "status": status,
        "created": isotime(row["created_at"]), "updated": isotime(row["updated_at"]),
        "minDisk": row["min_disk_gb"], "minRam": row["min_ram_mb"], "progress": row["progress"],
        "metadata": dict(row["metadata"]),
        "OS-EXT-IMG-SIZE:size": row["size_bytes"],
        "links": resource_links(base, project_id, "images", row["id"]),
    }
    if row["server_id"] is not None:
        view["server"] = {"id": str(row["server_id"]),
                          "links": resource_links(base, project_id, "servers", row["server_id"])}
    return view
