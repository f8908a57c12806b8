"""The network service's security group RPC handler: one method per message of
``shared.contracts.security_groups``, served on its own queue (``network.security``)
so that port allocations never wait behind group changes, nor the reverse.

Each write is one transaction; messages may be redelivered, and a redelivered
create meets its own first result as a duplicate (the caller, who timed out,
already answered its client with an error).
"""

from __future__ import annotations

import asyncpg
import structlog

from services.network import security_groups as sg
from shared.contracts.security_groups import (
    AddServerSecurityGroup,
    CreateSecurityGroup,
    CreateSecurityGroupRule,
    DeleteSecurityGroup,
    DeleteSecurityGroupRule,
    EnsureDefaultGroup,
    GetServerRules,
    GroupInfo,
    RemoveServerSecurityGroup,
    RuleInfo,
    SecurityMessage,
    ServerRules,
    UpdateSecurityGroup,
)

from shared.rpc.server import CallContext

log = structlog.get_logger(__name__)


class SecurityGroupHandler:
    """Serves ``network.security``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def __call__(self, msg: SecurityMessage,
                       ctx: CallContext) -> bool | GroupInfo | RuleInfo | ServerRules | None:
        match msg:
            case EnsureDefaultGroup():
                return await self._ensure_default(msg.project_id)
            case CreateSecurityGroup():
                return await self.create_group(msg)
            case DeleteSecurityGroup():
                return await self.delete_group(msg)
            case UpdateSecurityGroup():
                return await self.update_group(msg)
            case CreateSecurityGroupRule():
                return await self.create_rule(msg)
            case DeleteSecurityGroupRule():
                return await self.delete_rule(msg)
            case AddServerSecurityGroup():
                return await self.add_to_server(msg)
            case RemoveServerSecurityGroup():
                return await self.remove_from_server(msg)
            case GetServerRules():
                return await self.server_rules(msg)
        raise TypeError(f"unexpected message {type(msg).__name__}")

    async def _ensure_default(self, project_id: str) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            return await sg.ensure_default(conn, project_id)

    async def create_group(self, msg: CreateSecurityGroup) -> GroupInfo:
        # The default group first, in its own transaction: it counts against
        # maxSecurityGroups, and its name must be taken before a user's group
        # could take it.
        await self._ensure_default(msg.project_id)
        async with self._pool.acquire() as conn, conn.transaction():
            return await sg.create_group(conn, msg.project_id, msg.name, msg.description,
                                         max_groups=msg.max_groups)

    async def delete_group(self, msg: DeleteSecurityGroup) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await sg.delete_group(conn, msg.project_id, msg.group_id)

    async def update_group(self, msg: UpdateSecurityGroup) -> GroupInfo:
        # The default group first, as for a create: ``default`` is then taken,
        # so no group can be renamed to it.
        await self._ensure_default(msg.project_id)
        async with self._pool.acquire() as conn, conn.transaction():
            info, _ = await sg.update_group(conn, msg.project_id, msg.group_id, msg.name,
                                            msg.description)
            return info

    async def create_rule(self, msg: CreateSecurityGroupRule) -> RuleInfo:
        async with self._pool.acquire() as conn, conn.transaction():
            return await sg.create_rule(
                conn, msg.project_id, msg.parent_group_id, ip_protocol=msg.ip_protocol,
                from_port=msg.from_port, to_port=msg.to_port, cidr=msg.cidr,
                group_id=msg.group_id, max_rules=msg.max_rules)

    async def delete_rule(self, msg: DeleteSecurityGroupRule) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await sg.delete_rule(conn, msg.project_id, msg.rule_id)

    async def add_to_server(self, msg: AddServerSecurityGroup) -> None:
        if msg.name == sg.DEFAULT_GROUP:
            await self._ensure_default(msg.project_id)
        async with self._pool.acquire() as conn, conn.transaction():
            await sg.add_to_server(conn, msg.project_id, msg.server_id, msg.name)

    async def remove_from_server(self, msg: RemoveServerSecurityGroup) -> None:
        if msg.name == sg.DEFAULT_GROUP:
            await self._ensure_default(msg.project_id)
        async with self._pool.acquire() as conn, conn.transaction():
            await sg.remove_from_server(conn, msg.project_id, msg.server_id, msg.name)

    async def server_rules(self, msg: GetServerRules) -> ServerRules:
        # One snapshot for the server's groups, their rules and the members of
        # source groups.
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                                   readonly=True):
            return await sg.server_rules(conn, msg.server_id)
