"""Server views: brief (list, 4.4.1.5), core (the answers of update and rebuild,
4.4.1.9 and 4.4.1.18) and detail (get and list detail, 4.4.1.7-8: core with the
OS-EXT-STS, OS-EXT-AZ, OS-EXT-IPS, OS-EXT-IPS-MAC, config drive, key name and
security group attributes)."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from functools import lru_cache
from typing import Any

from services.api.views.links import bookmark, isotime, resource_links
from shared.states import api_status


def brief(row: Any, base: str, project_id: str) -> dict[str, Any]:
    return {"id": str(row["id"]), "name": row["name"],
            "links": resource_links(base, project_id, "servers", row["id"])}


@lru_cache(maxsize=4096)
def host_id(project_id: str, host: str | None) -> str:
    """Nova's hostId: the same for two servers of a project on one host, without
    telling the host's name (and different for another project). Remembered: a
    page of servers sits on a few hosts."""
    if not host:
        return ""
    return hashlib.sha224(f"{project_id}{host}".encode()).hexdigest()


def addresses(ports: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """``addresses`` of server details (OS-EXT-IPS, OS-EXT-IPS-MAC, 4.4.23-24) from
    the server's addresses cache (see ``services.network.addresses``): per network,
    each fixed address followed by the floating addresses mapped to it, as Nova
    listed them, with the MAC of the port they reach the server through.

    The prose of 4.4.23-24 names the attributes ``OS-EXT-IPS:ip_address`` and
    ``OS-EXT-IPS-MAC:mac_address``; their examples (and Nova) say
    ``OS-EXT-IPS:type`` and ``OS-EXT-IPS-MAC:mac_addr``, which we follow."""
    out: dict[str, list[dict[str, Any]]] = {}
    for port in ports:
        ips = out.setdefault(port["network_name"], [])
        version, mac = port.get("version", 4), port["mac"]
        ips.append({"version": version, "addr": port["address"],
                    "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": mac})
        for floating in port.get("floating_ips") or ():
            ips.append({"version": 4, "addr": floating,
                        "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": mac})
    return out


def plain_addresses(ports: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The addresses of ``GET .../ips`` (4.4.1.20-21): version and addr only, as the
    spec's examples and Nova show them, fixed and floating alike."""
    return {network: [{"version": ip["version"], "addr": ip["addr"]} for ip in ips]
            for network, ips in addresses(ports).items()}


def core(row: Any, base: str, project_id: str, *, is_admin: bool = False) -> dict[str, Any]:
    """The server as update (4.4.1.9) and rebuild (4.4.1.18) answer it: the core
    attributes their examples show, addresses with version and addr only, and no
    extension attribute. So did Nova, whose extensions (extended status, AZ, IPs,
    config drive, key name, security groups) extended show and detail only.

    The ``fault`` of a server in ERROR is core too (Nova's view builder added it).
    """
    return _core(row, base, project_id, is_admin, plain_addresses(row["addresses"]))


def _core(row: Any, base: str, project_id: str, is_admin: bool,
          shown_addresses: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """:func:`core` with the ``addresses`` to show (detail shows them otherwise)."""
    sid = str(row["id"])
    image_id = row["image_id"]
    view: dict[str, Any] = {
        "id": sid,
        "name": row["name"],
        "status": api_status(row["vm_state"], row["task_state"]),
        "tenant_id": row["project_id"],
        "user_id": row["user_id"],
        "created": isotime(row["created_at"]),
        "updated": isotime(row["updated_at"]),
        "hostId": host_id(row["project_id"], row["host"]),
        "accessIPv4": row["access_ipv4"],
        "accessIPv6": row["access_ipv6"],
        "progress": row["progress"],
        "image": {"id": (image := str(image_id)),
                  "links": bookmark(base, project_id, "images", image)}
        if image_id else "",
        "flavor": {"id": row["flavor_id"],
                   "links": bookmark(base, project_id, "flavors", row["flavor_id"])},
        "metadata": dict(row["metadata"]),
        "addresses": shown_addresses,
        "links": resource_links(base, project_id, "servers", sid),
    }
    fault = row["fault"]
    if fault is not None and row["vm_state"] == "error":
        code, message, details, created = fault
        view["fault"] = {"code": code, "message": message, "created": isotime(created)}
        # Details of a 500 fault name hosts and internals: admins only, as in Nova.
        if details and (is_admin or code != 500):
            view["fault"]["details"] = details
    return view


def detail(row: Any, base: str, project_id: str, *, is_admin: bool = False,
           hide_addresses_in: Collection[str] = ()) -> dict[str, Any]:
    """The server as get (4.4.1.8) and list detail (4.4.1.7) show it: :func:`core`
    with the attributes of the extensions (OS-EXT-STS, OS-EXT-AZ, OS-EXT-IPS,
    OS-EXT-IPS-MAC, config drive, key name, security groups).

    Args:
        hide_addresses_in: vm_states in which ``addresses`` shows empty
            (os-hide-server-addresses: Nova's extension emptied them in show
            and detail only).
    """
    hidden = row["vm_state"] in hide_addresses_in
    return {
        **_core(row, base, project_id, is_admin, {} if hidden else addresses(row["addresses"])),
        "key_name": row["key_name"],
        "config_drive": "True" if row["config_drive"] else "",
        "security_groups": [{"name": n} for n in row["security_groups"]],
        "OS-EXT-STS:vm_state": row["vm_state"],
        "OS-EXT-STS:task_state": row["task_state"],
        "OS-EXT-STS:power_state": row["power_state"],
        "OS-EXT-AZ:availability_zone": row["availability_zone"] or "",
        # Not in the spec's examples; Nova's os-extended-volumes showed a server's
        # volumes so, and the volume's own attachments say the same (issue 11).
        "os-extended-volumes:volumes_attached": [
            {"id": str(v)} for v in row.get("volumes_attached") or ()],
    }


def created(server_id: str, admin_pass: str, groups: list[str], base: str,
            project_id: str) -> dict[str, Any]:
    """The 202 body of create (section 4.4.1.6)."""
    return {"id": server_id, "links": resource_links(base, project_id, "servers", server_id),
            "adminPass": admin_pass, "security_groups": [{"name": n} for n in groups]}
