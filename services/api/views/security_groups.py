"""Security group and rule views (sections 4.4.11.5-9).

A rule's source shows as ``ip_range: {"cidr": ...}`` with ``group: {}``, or as
``group: {"name", "tenant_id"}`` with ``ip_range: {}``; a group rule made
without a protocol shows ``ip_protocol``, ``from_port`` and ``to_port`` null,
as the spec's list example does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def rule(row: Mapping[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": row["id"],
        "parent_group_id": row["parent_group_id"],
        "ip_protocol": row["ip_protocol"],
        "from_port": row["from_port"],
        "to_port": row["to_port"],
        "ip_range": {},
        "group": {},
    }
    if row["group_id"] is not None:
        view["group"] = {"name": row["group_name"], "tenant_id": row["group_project_id"]}
    elif row["cidr"] is not None:
        view["ip_range"] = {"cidr": row["cidr"]}
    return view


def group(row: Mapping[str, Any], rules: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "tenant_id": row["project_id"],
        "rules": [rule(r) for r in rules],
    }
