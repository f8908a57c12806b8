"""Floating IP views (section 4.4.8) and floating IP pools.

Keys in the order of the spec's XML examples (``instance_id``, ``ip``,
``fixed_ip``, ``id``), which the XML writer keeps; JSON order does not matter.
``pool`` is not in the spec's examples but was in every Nova response, and
clients (openstacksdk) read it as the floating IP's network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def floating_ip(fip: Mapping[str, Any]) -> dict[str, Any]:
    """One floating IP from a ``floating_ips`` row or a ``FloatingIp`` as builtins."""
    server_id = fip["server_id"]
    return {"instance_id": str(server_id) if server_id else None,
            "ip": fip["address"],
            "fixed_ip": fip["fixed_address"],
            "id": fip["id"],
            "pool": fip["pool"]}


def pools(names: list[str]) -> dict[str, Any]:
    return {"floating_ip_pools": [{"name": n} for n in names]}
