"""The addSecurityGroup and removeSecurityGroup server actions (sections 4.4.11.3-4).

``{"addSecurityGroup": {"name": "web"}}`` (or ``<addSecurityGroup><name>web</name>
</addSecurityGroup>``) puts the project's group on the server; the network
service writes the server's list of groups under a lock on the group, so a
concurrent delete of the group cannot leave the server naming it. Both answer
202 with no body. Faults, Nova's:

* no ``name``, a blank one, or one longer than a group's name can be (255): 400;
* the project has no group of that name (another project's group counts as
  none): 404 "Security group NAME not found for project P.";
* add a group the server has, or remove one it does not have: 400.

``name`` may also be the id of one of the project's groups, as for server create
(``queries.security_groups.names_for``): ``openstack server add security group``
passes what the user typed, name or id, when a network endpoint is present.

The change applies to the server's effective rule set at once (the network
service's ``GetServerRules``), whatever state the server is in, as Nova did;
a deleted server is 404.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from services.api.keys import POOL
from services.api.queries import security_groups as group_q
from services.api.representation import View
from services.api.resources.common import principal
from services.api.resources.security_groups import MAX_LENGTH, client
from services.api.resources.server_tasks import record_action
from shared.contracts.security_groups import (
    AddServerSecurityGroup,
    RemoveServerSecurityGroup,
)
from shared.errors import BadRequest


def _group_name(value: Any) -> str:
    if not isinstance(value, dict):
        raise BadRequest("Missing parameter dict")
    if "name" not in value:
        raise BadRequest("Security group not specified")
    name = value["name"]
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("Security group name cannot be empty")
    if len(name.strip()) > MAX_LENGTH:
        raise BadRequest(f"Security group name has more than {MAX_LENGTH} characters.")
    return name.strip()


async def _resolved(request: web.Request, value: Any) -> str:
    """The name of the group ``value`` names, by name or by id (see the docstring)."""
    name = _group_name(value)
    async with request.app[POOL].acquire() as conn:
        (resolved,) = await group_q.names_for(conn, principal(request).project_id, [name])
    return resolved


async def add_security_group(request: web.Request, row: asyncpg.Record, value: Any) -> View:
    name = await _resolved(request, value)
    await client(request).add_to_server(AddServerSecurityGroup(
        project_id=principal(request).project_id, server_id=row["id"], name=name))
    await record_action(request, row, "addSecurityGroup")
    return View(None, status=202)


async def remove_security_group(request: web.Request, row: asyncpg.Record, value: Any) -> View:
    name = await _resolved(request, value)
    await client(request).remove_from_server(RemoveServerSecurityGroup(
        project_id=principal(request).project_id, server_id=row["id"], name=name))
    await record_action(request, row, "removeSecurityGroup")
    return View(None, status=202)
