"""Networks as Nova's os-networks and os-tenant-networks showed them (Icehouse/Juno).

Nimbus networks are one private subnet each (``networks``: name, cidr, gateway).
os-networks shows Nova's user fields (``label`` is the name; ``netmask`` and
``broadcast`` follow from the cidr; no DNS servers or IPv6 are configured, so
those are null) and, to admins, ``project_id`` and the times from Nova's admin
fields; fields of nova-network's bridges, VLANs and VPNs, which Nimbus has not,
are left out rather than made up. os-tenant-networks shows ``id``, ``label`` and
``cidr`` only, as Nova did.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from services.api.views.links import microtime


def network(row: Any, *, is_admin: bool) -> dict[str, Any]:
    net = ipaddress.ip_network(row["cidr"])
    view: dict[str, Any] = {
        "id": row["id"],
        "label": row["name"],
        "cidr": row["cidr"],
        "netmask": str(net.netmask),
        "gateway": row["gateway"],
        "broadcast": str(net.broadcast_address),
        "dns1": None,
        "dns2": None,
        "cidr_v6": None,
        "gateway_v6": None,
        "netmask_v6": None,
    }
    if is_admin:
        view.update({"project_id": row["project_id"], "created_at": microtime(row["created_at"]),
                     "updated_at": None, "deleted_at": None, "deleted": False})
    return view


def tenant_network(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "label": row["name"], "cidr": row["cidr"]}
