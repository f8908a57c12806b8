"""Security groups and their rules as Neutron shows them: the compute API's own
groups (``os-security-groups``), read from the same tables and written by the
same network service calls, after the same checks (``resources.
security_groups``, ``resources.security_group_rules``). A group made here is
the one ``os-security-groups`` shows, and the reverse.

Ids are Nimbus's integers written as strings; an id that is not one is 404.
Create answers 201, delete 204, as Neutron. Every project has its ``default``
group, made on first sight as the compute API does.

A Neutron rule becomes a Nimbus rule (``to_compute_rule``): ``protocol`` is
``ip_protocol`` (tcp, udp, icmp, by name or number; none: every protocol),
``port_range_min``/``max`` are ``from_port``/``to_port`` (for icmp the type
and code, none being -1; for tcp and udp none being every port, 1-65535),
``remote_ip_prefix`` is ``cidr`` and ``remote_group_id`` is ``group_id``
(neither: any source, 0.0.0.0/0). Nimbus rules let traffic in over IPv4 only:
an egress rule, an IPv6 one, another protocol or a remote address group is a
400 that says so, and nothing is made. Everything else is checked by the
compute API's ``new_rule``, so both APIs refuse the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from services.api.keys import POOL
from services.api.neutron.common import (
    NeutronNotFound,
    add,
    filtered,
    no_description,
    not_found,
    only_fields,
    read_body,
    timestamp,
)
from services.api.queries import security_groups as q
from services.api.resources import security_group_rules as compute_rules
from services.api.resources import security_groups as compute_groups
from services.api.resources.common import principal
from services.api.side_apps import json_response
from shared.contracts.security_groups import (
    DeleteSecurityGroup,
    DeleteSecurityGroupRule,
    UpdateSecurityGroup,
)
from shared.errors import BadRequest, NotFound

# Neutron's protocol numbers for the protocols Nimbus rules hold.
_PROTOCOL_NUMBERS = {"6": "tcp", "17": "udp", "1": "icmp"}


def rule_view(row: Mapping[str, Any], project_id: str) -> dict[str, Any]:
    """A Nimbus rule (a query row or a RuleInfo as a dict) in Neutron's shape."""
    low, high = row["from_port"], row["to_port"]
    if row["ip_protocol"] == "icmp":
        low, high = (None if low == -1 else low), (None if high == -1 else high)
    return {"id": str(row["id"]), "security_group_id": str(row["parent_group_id"]),
            "direction": "ingress", "ethertype": "IPv4", "protocol": row["ip_protocol"],
            "port_range_min": low, "port_range_max": high,
            "remote_ip_prefix": row["cidr"],
            "remote_group_id": None if row["group_id"] is None else str(row["group_id"]),
            "remote_address_group_id": None, "normalized_cidr": row["cidr"],
            "description": "", "project_id": project_id, "tenant_id": project_id,
            "created_at": timestamp(row.get("created_at")),
            "updated_at": timestamp(row.get("created_at")), "revision_number": 0}


def group_view(row: Mapping[str, Any], rules: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    pid = row["project_id"]
    return {"id": str(row["id"]), "name": row["name"], "description": row["description"],
            "security_group_rules": [rule_view(r, pid) for r in rules],
            "stateful": True, "shared": False, "project_id": pid, "tenant_id": pid,
            "tags": [], "created_at": timestamp(row.get("created_at")),
            "updated_at": timestamp(row.get("created_at")), "revision_number": 0}


def _id(raw: object, kind: str) -> int:
    gid = compute_groups.parse_id(raw)
    if gid is None:
        raise not_found(kind, raw)
    return gid


async def _groups(request: web.Request) -> list[dict[str, Any]]:
    """The project's groups (``default`` made first if missing), with their rules."""
    pid = principal(request).project_id
    await compute_groups.ensure_default(request, pid)
    async with request.app[POOL].acquire() as conn, conn.transaction(
            readonly=True, isolation="repeatable_read"):
        rows = await q.list_for_project(conn, pid)
        rules = await q.rules_of(conn, [r["id"] for r in rows])
    return [group_view(r, rules[r["id"]]) for r in rows]


async def _group(request: web.Request, gid: int) -> dict[str, Any]:
    for group in await _groups(request):
        if group["id"] == str(gid):
            return group
    raise not_found("SecurityGroup", gid)


async def list_groups(request: web.Request) -> web.Response:
    return json_response({"security_groups": filtered(request, await _groups(request))})


async def show_group(request: web.Request) -> web.Response:
    group = await _group(request, _id(request.match_info["group_id"], "SecurityGroup"))
    return json_response({"security_group": only_fields(request, group)})


def _description(body: Mapping[str, Any]) -> str | None:
    """The description a body gives (None: none given). Neutron's may be empty;
    the compute API's checks apply to any other."""
    raw = body.get("description")
    if raw is None or raw == "":
        return raw
    return compute_groups.check_property(raw, "description")


def _stateful(body: Mapping[str, Any]) -> None:
    if body.get("stateful", True) is not True:
        raise BadRequest("Nimbus security groups are stateful: 'stateful' can only be true.")


async def create_group(request: web.Request) -> web.Response:
    pid = principal(request).project_id
    body = await read_body(request, "security_group")
    _stateful(body)
    name = compute_groups.check_property(body.get("name"), "name")
    description = _description(body) or ""
    made = await compute_groups.create(request, pid, name, description)
    return json_response({"security_group": await _group(request, made.id)}, status=201)


async def update_group(request: web.Request) -> web.Response:
    pid = principal(request).project_id
    gid = _id(request.match_info["group_id"], "SecurityGroup")
    body = await read_body(request, "security_group")
    _stateful(body)
    current = await _group(request, gid)
    name = (compute_groups.check_property(body["name"], "name")
            if body.get("name") is not None else current["name"])
    try:
        await compute_groups.client(request).update_group(UpdateSecurityGroup(
            project_id=pid, group_id=gid, name=name, description=_description(body)))
    except NotFound:
        raise not_found("SecurityGroup", gid) from None
    return json_response({"security_group": only_fields(request, await _group(request, gid))})


async def delete_group(request: web.Request) -> web.Response:
    pid = principal(request).project_id
    gid = _id(request.match_info["group_id"], "SecurityGroup")
    try:
        await compute_groups.client(request).delete_group(
            DeleteSecurityGroup(project_id=pid, group_id=gid))
    except NotFound:
        raise not_found("SecurityGroup", gid) from None
    return web.Response(status=204)


# ---- rules ------------------------------------------------------------------------

def _protocol(raw: object) -> str | None:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "any")):
        return None
    text = str(raw).strip().lower()
    protocol = _PROTOCOL_NUMBERS.get(text, text)
    if protocol not in compute_rules.PROTOCOLS:
        raise BadRequest(f"Protocol {raw} is not supported: Nimbus security group rules "
                         "hold tcp, udp or icmp (or every protocol).")
    return protocol


def to_compute_rule(body: Mapping[str, Any]) -> compute_rules.NewRule:
    """The Nimbus rule a Neutron rule body asks for; BadRequest (or 404 for an id
    that names no group) when Nimbus cannot hold it."""
    no_description(body, "security group rules")
    if body.get("security_group_id") is None:
        raise BadRequest("Invalid input: 'security_group_id' is required.")
    parent = _id(body["security_group_id"], "SecurityGroup")
    direction = body.get("direction")
    if direction not in ("ingress", "egress"):
        raise BadRequest(f"Invalid input: direction {direction!r} is not one of "
                         "'ingress', 'egress'.")
    if direction == "egress":
        raise BadRequest("Nimbus security group rules let traffic in only: an egress "
                         "rule cannot be made.")
    ethertype = body.get("ethertype") or "IPv4"
    if ethertype != "IPv4":
        raise BadRequest(f"Nimbus security group rules are IPv4 only: ethertype "
                         f"{ethertype!r} cannot be used.")
    if body.get("remote_address_group_id") is not None:
        raise BadRequest("Remote address groups are not supported: give remote_ip_prefix "
                         "or remote_group_id.")
    prefix, remote = body.get("remote_ip_prefix"), body.get("remote_group_id")
    if prefix is not None and remote is not None:
        raise BadRequest("Only remote_ip_prefix or remote_group_id may be provided.")
    if isinstance(prefix, str) and ":" in prefix:
        raise BadRequest(f"Nimbus security group rules are IPv4 only: remote_ip_prefix "
                         f"{prefix} is IPv6.")
    protocol = _protocol(body.get("protocol"))
    low, high = body.get("port_range_min"), body.get("port_range_max")
    if protocol is None and (low is not None or high is not None):
        raise BadRequest("Must also specify protocol if port range is given.")
    if protocol == "icmp":
        if low is None and high is not None:
            raise BadRequest("ICMP code (port_range_max) is given without an ICMP type "
                             "(port_range_min).")
        low, high = (-1 if low is None else low), (-1 if high is None else high)
    elif protocol is not None:
        if (low is None) != (high is None):
            raise BadRequest("For TCP/UDP protocols, give both port_range_min and "
                             "port_range_max, or neither (every port).")
        low, high = (1, 65535) if low is None else (low, high)
    compute_body: dict[str, Any] = {"parent_group_id": parent, "ip_protocol": protocol,
                                    "from_port": low, "to_port": high}
    if remote is not None:
        compute_body["group_id"] = _id(remote, "SecurityGroup")
    elif prefix is not None:
        compute_body["cidr"] = prefix
    return compute_rules.new_rule(compute_body, any_protocol_from_cidr=True)


async def _rules(request: web.Request) -> list[dict[str, Any]]:
    return [r for g in await _groups(request) for r in g["security_group_rules"]]


async def list_rules(request: web.Request) -> web.Response:
    return json_response({"security_group_rules": filtered(request, await _rules(request))})


async def _rule(request: web.Request, rule_id: int) -> dict[str, Any]:
    for rule in await _rules(request):
        if rule["id"] == str(rule_id):
            return rule
    raise not_found("SecurityGroupRule", rule_id)


async def show_rule(request: web.Request) -> web.Response:
    rule = await _rule(request, _id(request.match_info["rule_id"], "SecurityGroupRule"))
    return json_response({"security_group_rule": only_fields(request, rule)})


async def create_rule(request: web.Request) -> web.Response:
    pid = principal(request).project_id
    body = await read_body(request, "security_group_rule")
    rule = to_compute_rule(body)
    try:
        made = await compute_rules.create(request, pid, rule)
    except NotFound as exc:
        # The parent group, or the remote one, is not the project's: the
        # network service's message says which.
        raise NeutronNotFound("SecurityGroupNotFound", exc.message) from None
    return json_response({"security_group_rule": await _rule(request, made.id)}, status=201)


async def delete_rule(request: web.Request) -> web.Response:
    rule_id = _id(request.match_info["rule_id"], "SecurityGroupRule")
    try:
        await compute_groups.client(request).delete_rule(DeleteSecurityGroupRule(
            project_id=principal(request).project_id, rule_id=rule_id))
    except NotFound:
        raise not_found("SecurityGroupRule", rule_id) from None
    return web.Response(status=204)


def setup(router: web.UrlDispatcher) -> None:
    add(router, "GET", "/v2.0/security-groups", list_groups)
    add(router, "POST", "/v2.0/security-groups", create_group)
    add(router, "GET", "/v2.0/security-groups/{group_id}", show_group)
    add(router, "PUT", "/v2.0/security-groups/{group_id}", update_group)
    add(router, "DELETE", "/v2.0/security-groups/{group_id}", delete_group)
    add(router, "GET", "/v2.0/security-group-rules", list_rules)
    add(router, "POST", "/v2.0/security-group-rules", create_rule)
    add(router, "GET", "/v2.0/security-group-rules/{rule_id}", show_rule)
    add(router, "DELETE", "/v2.0/security-group-rules/{rule_id}", delete_rule)
