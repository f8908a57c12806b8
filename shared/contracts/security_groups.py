"""Security group messages, served by the network service on its own queue.

The network service owns the ``security_groups`` and ``security_group_rules``
tables and each server's list of groups (``servers.security_groups``): every
write goes through these calls so that quotas, duplicates and the removal of a
deleted group from its servers are decided in one place, in one transaction.
Reads (lists, shows) may go straight to PostgreSQL.

v1: EnsureDefaultGroup, CreateSecurityGroup, DeleteSecurityGroup,
    CreateSecurityGroupRule, DeleteSecurityGroupRule, AddServerSecurityGroup,
    RemoveServerSecurityGroup, GetServerRules (all calls).
v2: UpdateSecurityGroup (a call). A v1 network service dead-letters it as
    undecodable, so until it is upgraded the API's call times out (503).
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from shared.errors import QuotaExceeded
from shared.rpc import RpcClient

QUEUE = "network.security"


class SecurityGroupQuotaExceeded(QuotaExceeded):
    """maxSecurityGroups or maxSecurityGroupRules would be passed (413 overLimit,
    ``Retry-After: 0`` as every quota fault)."""


# ---- values -------------------------------------------------------------------

class SecurityRule(msgspec.Struct, frozen=True, kw_only=True):
    """One rule as a server's traffic filter sees it: what is let in, from where.

    Either ``cidr`` or ``source_group`` (the name of a group of the same project
    whose servers may send) names the source; ``ip_protocol`` None lets every
    protocol in (a group rule made without one). ``source_addresses`` are the
    fixed addresses of the source group's live servers at the time of asking,
    so that a host can turn a group rule into address filters.
    """

    ip_protocol: str | None
    from_port: int | None
    to_port: int | None
    cidr: str | None = None
    source_group: str | None = None
    source_addresses: tuple[str, ...] = ()


class ServerRules(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one server lets in: the distinct rules of all its groups."""

    server_id: UUID
    project_id: str
    groups: tuple[str, ...]
    rules: tuple[SecurityRule, ...]


class RuleInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A rule as the API shows it (section 4.4.11.9)."""

    id: int
    parent_group_id: int
    ip_protocol: str | None
    from_port: int | None
    to_port: int | None
    cidr: str | None = None
    group_id: int | None = None
    group_name: str | None = None
    group_project_id: str | None = None


class GroupInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A group as the API shows it (section 4.4.11.6)."""

    id: int
    project_id: str
    name: str
    description: str
    rules: tuple[RuleInfo, ...] = ()


# ---- messages -----------------------------------------------------------------

class EnsureDefaultGroup(msgspec.Struct, tag="ensure_default_group", frozen=True, kw_only=True):
    """Make the project's ``default`` group with the rules of section 2.3.2 unless it
    exists. Returns True when this call made it."""

    project_id: str


class CreateSecurityGroup(msgspec.Struct, tag="create_security_group", frozen=True,
                          kw_only=True):
    """Create a group; returns its GroupInfo.

    ``max_groups`` is the project's maxSecurityGroups (-1: unlimited), counted
    under a per-project lock together with the ``default`` group. Raises
    BadRequest when the name is taken, SecurityGroupQuotaExceeded when full.
    """

    project_id: str
    name: str
    description: str
    max_groups: int = -1


class DeleteSecurityGroup(msgspec.Struct, tag="delete_security_group", frozen=True,
                          kw_only=True):
    """Delete a group of the project, its rules, the rules of other groups that
    name it as source, and take it off every server that has it (section 2.3.2).
    NotFound if the project has no such group, BadRequest for ``default``."""

    project_id: str
    group_id: int


class UpdateSecurityGroup(msgspec.Struct, tag="update_security_group", frozen=True,
                          kw_only=True):
    """(v2) Give the project's group a new name and description; returns its
    GroupInfo with its rules. Every live server that has the group keeps it
    under the new name (servers name their groups). ``description`` None keeps
    the current one.

    Idempotent: the same update again changes nothing and answers the same.
    NotFound if the project has no such group, BadRequest for ``default``
    (never renamed, as in Nova) and for a name another group of the project has.
    """

    project_id: str
    group_id: int
    name: str
    description: str | None = None


class CreateSecurityGroupRule(msgspec.Struct, tag="create_security_group_rule", frozen=True,
                              kw_only=True):
    """Add a validated rule to the project's group ``parent_group_id``; returns its
    RuleInfo. Exactly one of ``cidr`` and ``group_id`` (a group of the same
    project) is the source. NotFound for a group not the project's, BadRequest
    for a duplicate, SecurityGroupQuotaExceeded past ``max_rules`` (per group,
    maxSecurityGroupRules; -1: unlimited)."""

    project_id: str
    parent_group_id: int
    ip_protocol: str | None
    from_port: int | None
    to_port: int | None
    cidr: str | None = None
    group_id: int | None = None
    max_rules: int = -1


class DeleteSecurityGroupRule(msgspec.Struct, tag="delete_security_group_rule", frozen=True,
                              kw_only=True):
    """Delete a rule of one of the project's groups; NotFound otherwise."""

    project_id: str
    rule_id: int


class AddServerSecurityGroup(msgspec.Struct, tag="add_server_security_group", frozen=True,
                             kw_only=True):
    """Put the project's group ``name`` on a live server of the project.

    NotFound when the project has no such group (or server), BadRequest when
    the server has it already."""

    project_id: str
    server_id: UUID
    name: str


class RemoveServerSecurityGroup(msgspec.Struct, tag="remove_server_security_group",
                                frozen=True, kw_only=True):
    """Take the group ``name`` off a live server of the project.

    NotFound when the project has no such group (or server), BadRequest when
    the server does not have it."""

    project_id: str
    server_id: UUID
    name: str


class GetServerRules(msgspec.Struct, tag="get_server_rules", frozen=True, kw_only=True):
    """(call) The server's effective rule set (ServerRules); NotFound for a server
    that is not live."""

    server_id: UUID


SecurityMessage = (EnsureDefaultGroup | CreateSecurityGroup | DeleteSecurityGroup
                   | UpdateSecurityGroup | CreateSecurityGroupRule | DeleteSecurityGroupRule
                   | AddServerSecurityGroup | RemoveServerSecurityGroup | GetServerRules)


class SecurityGroupClient:
    """The calls of this contract, for the API (and, later, the hosts that enforce)."""

    def __init__(self, rpc: RpcClient, *, request_id: str | None,
                 timeout: float | None = None) -> None:
        self._rpc = rpc
        self._request_id = request_id
        self._timeout = timeout

    async def ensure_default(self, msg: EnsureDefaultGroup) -> bool:
        return await self._rpc.call(QUEUE, msg, bool,
                                    request_id=self._request_id, timeout=self._timeout)

    async def create_group(self, msg: CreateSecurityGroup) -> GroupInfo:
        return await self._rpc.call(QUEUE, msg, GroupInfo,
                                    request_id=self._request_id, timeout=self._timeout)

    async def update_group(self, msg: UpdateSecurityGroup) -> GroupInfo:
        return await self._rpc.call(QUEUE, msg, GroupInfo,
                                    request_id=self._request_id, timeout=self._timeout)

    async def delete_group(self, msg: DeleteSecurityGroup) -> None:
        await self._rpc.call(QUEUE, msg, type(None),
                             request_id=self._request_id, timeout=self._timeout)

    async def create_rule(self, msg: CreateSecurityGroupRule) -> RuleInfo:
        return await self._rpc.call(QUEUE, msg, RuleInfo,
                                    request_id=self._request_id, timeout=self._timeout)

    async def delete_rule(self, msg: DeleteSecurityGroupRule) -> None:
        await self._rpc.call(QUEUE, msg, type(None),
                             request_id=self._request_id, timeout=self._timeout)

    async def add_to_server(self, msg: AddServerSecurityGroup) -> None:
        await self._rpc.call(QUEUE, msg, type(None),
                             request_id=self._request_id, timeout=self._timeout)

    async def remove_from_server(self, msg: RemoveServerSecurityGroup) -> None:
        await self._rpc.call(QUEUE, msg, type(None),
                             request_id=self._request_id, timeout=self._timeout)

    async def server_rules(self, msg: GetServerRules) -> ServerRules:
        return await self._rpc.call(QUEUE, msg, ServerRules,
                                    request_id=self._request_id, timeout=self._timeout)
