"""Security group rules: create and delete (sections 4.4.11.9-10).

The body is checked here (``new_rule``, Nova's rules); the network service then
checks, under a lock on the group, that the parent group (and a source group)
is the project's, that the group does not have the rule already, and that the
group has room under maxSecurityGroupRules.

Rules (Nova's ``_new_ingress_rule``, with the spec's wording where it adds one):

* ``parent_group_id`` is required, an integer; another project's group is 404.
* The source is a ``cidr`` or a ``group_id`` (a group of the same project; 404
  otherwise). Both is 400: the spec says exactly one. Neither means
  ``0.0.0.0/0``, as in Nova (Tempest creates rules that way). A CIDR with host
  bits set is taken as its network (``10.0.0.5/24`` is ``10.0.0.0/24``); a
  zero-length prefix on another address than ``0.0.0.0`` or ``::`` is 400.
* ``ip_protocol`` is tcp, udp or icmp (any case; stored lower case). tcp/udp
  ports are 1-65535 with ``from_port <= to_port``; icmp type and code are
  -1..255 (-1: any). A CIDR rule needs the protocol and both ports. A group rule
  may omit the ports (all of them: 1-65535, or icmp -1/-1), or the protocol and
  the ports together (every protocol, as the spec's list example shows).
* A rule the group already has is 400 "This rule already exists in group N".
* Over maxSecurityGroupRules (per group) is 413 overLimit with ``Retry-After: 0``
  (as every quota).
* Create answers 202, delete 202 (the spec's codes; create 200 as Nova under the
  ``nova`` profile, ``status_codes``).
  A rule id that is not an integer is 404, like an unknown one.
"""

from __future__ import annotations

import ipaddress
from typing import Any, NamedTuple

import msgspec
from aiohttp import web

from services.api import quotas
from services.api.keys import POOL
from services.api.representation import View, parse_body, represented, route
from services.api.resources.common import principal
from services.api.resources.security_groups import client, parse_id
from services.api.status_codes import Op, status_for
from services.api.views import security_groups as views
from shared.contracts.security_groups import (
    CreateSecurityGroupRule,
    DeleteSecurityGroupRule,
    RuleInfo,
)
from shared.errors import BadRequest, NotFound

PROTOCOLS = ("tcp", "udp", "icmp")
ANY_SOURCE = "0.0.0.0/0"


class NewRule(NamedTuple):
    parent_group_id: int
    ip_protocol: str | None
    from_port: int | None
    to_port: int | None
    cidr: str | None
    group_id: int | None


def _given(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _port(value: object, icmp: bool) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    if icmp:
        raise BadRequest("Type and Code must be integers for ICMP protocol type")
    raise BadRequest("To and From ports must be integers")


def _cidr(value: object) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"Invalid cidr {value!r}.")
    text = value.strip()
    if "/" not in text:
        raise BadRequest(f"Invalid cidr {text}: give an address and a prefix length "
                         "(10.0.0.0/24).")
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise BadRequest(f"Invalid cidr {text}.") from None
    address = text.split("/", 1)[0]
    if net.prefixlen == 0 and address not in ("0.0.0.0", "::"):
        raise BadRequest(f"Bad prefix for network in cidr {text}")
    return str(net)


def new_rule(body: dict[str, Any], *, any_protocol_from_cidr: bool = False) -> NewRule:
    """The rule a create body asks for, normalised; BadRequest if it is not valid.

    ``any_protocol_from_cidr`` lets a CIDR rule leave out the protocol and the
    ports (every protocol from the CIDR, which the tables can hold as a group
    rule's): Neutron's rules may, so the network endpoint passes True; the
    compute API's need them, as Nova's did.
    """
    parent = parse_id(body.get("parent_group_id"))
    if parent is None:
        raise BadRequest("Security group id should be integer")
    has_cidr, has_group = _given(body.get("cidr")), _given(body.get("group_id"))
    if has_cidr and has_group:
        raise BadRequest("Give exactly one of cidr and group_id.")
    group_id = None
    cidr = None
    if has_group:
        group_id = parse_id(body["group_id"])
        if group_id is None:
            raise BadRequest("Security group id should be integer")
    else:
        cidr = _cidr(body["cidr"]) if has_cidr else ANY_SOURCE

    raw_protocol = body.get("ip_protocol")
    from_given, to_given = _given(body.get("from_port")), _given(body.get("to_port"))
    if not _given(raw_protocol):
        if (group_id is not None or any_protocol_from_cidr) and not from_given and not to_given:
            return NewRule(parent, None, None, None, cidr, group_id)  # every protocol
        raise BadRequest("Not enough parameters to build a valid rule.")
    if not isinstance(raw_protocol, str):
        raise BadRequest(f"Invalid IP protocol {raw_protocol}.")
    protocol = raw_protocol.strip().lower()
    if protocol not in PROTOCOLS:
        raise BadRequest(f"Invalid IP protocol {raw_protocol}.")
    icmp = protocol == "icmp"
    if group_id is not None and not from_given and not to_given:
        low, high = (-1, -1) if icmp else (1, 65535)
    elif from_given and to_given:
        low, high = _port(body["from_port"], icmp), _port(body["to_port"], icmp)
    else:
        raise BadRequest("Not enough parameters to build a valid rule.")
    if icmp:
        if not (-1 <= low <= 255 and -1 <= high <= 255):
            raise BadRequest(f"Invalid port range {low}:{high}. For ICMP, the type:code "
                             "must be valid")
    else:
        if low > high:
            raise BadRequest(f"Invalid port range {low}:{high}. Former value cannot be "
                             "greater than the later")
        if low < 1 or high > 65535:
            raise BadRequest(f"Invalid port range {low}:{high}. Valid TCP ports should be "
                             "between 1-65535")
    return NewRule(parent, protocol, low, high, cidr, group_id)


async def create(request: web.Request, project_id: str, rule: NewRule) -> RuleInfo:
    """Have the network service add a checked rule within the group's
    maxSecurityGroupRules (the compute API's create and the network endpoint's)."""
    async with request.app[POOL].acquire() as conn:
        limits = await quotas.absolute_limits(conn, project_id)
    return await client(request).create_rule(CreateSecurityGroupRule(
        project_id=project_id, parent_group_id=rule.parent_group_id,
        ip_protocol=rule.ip_protocol, from_port=rule.from_port, to_port=rule.to_port,
        cidr=rule.cidr, group_id=rule.group_id, max_rules=limits["maxSecurityGroupRules"]))


@represented
async def create_rule(request: web.Request) -> View:
    pid = principal(request).project_id
    body = (await parse_body(request, root="security_group_rule"))["security_group_rule"]
    if not isinstance(body, dict):
        raise BadRequest("The request body must hold a 'security_group_rule' object.")
    made = await create(request, pid, new_rule(body))
    return View({"security_group_rule": views.rule(msgspec.structs.asdict(made))},
                status=status_for(request, Op.CREATE_SECURITY_GROUP_RULE))


@represented
async def delete_rule(request: web.Request) -> View:
    raw = request.match_info["security_group_rule_id"]
    rule_id = parse_id(raw)
    if rule_id is None:
        raise NotFound(f"Security group with rule {raw} not found.")
    await client(request).delete_rule(DeleteSecurityGroupRule(
        project_id=principal(request).project_id, rule_id=rule_id))
    return View(None, status=202)


def setup(router: web.UrlDispatcher) -> None:
    route(router, "POST", "/v2/{project_id}/os-security-group-rules", create_rule)
    route(router, "DELETE", "/v2/{project_id}/os-security-group-rules/{security_group_rule_id}",
          delete_rule)
