"""Security groups: list, create, get, update, delete (sections 2.3.2, 4.4.11.5-8;
update is Nova's, which the spec does not list).

Reads go straight to PostgreSQL; writes go to the network service, which owns
the groups (``shared.contracts.security_groups``). Every project has a
``default`` group holding the two rules of section 2.3.2: the network service
makes it on a project's first port allocation, and list, get and create make
it too, so that a project without servers sees it.

Choices (the spec gives the normal codes only; the faults are Nova's):

* Create answers 202, get and list 200, delete 202, as the spec says (create
  200 as Nova under the ``nova`` profile, ``status_codes``).
* ``name`` is required; ``description`` is not marked required by the spec and
  defaults to ``""`` (Nova required both). When given, each is 1 to 255
  characters after trimming, without control characters (Nova checked the
  length only; XML cannot carry control characters). A name taken in the
  project is 400 "Security group NAME already exists" (Nova's code).
* maxSecurityGroups counts the ``default`` group; over it is 413 overLimit
  with ``Retry-After: 0`` (as every quota), checked under a per-project lock in
  the network service.
* ``default`` is never deleted: 400 "Unable to delete system group 'default'"
  (Nova's code and message).
* Update is Nova's ``PUT os-security-groups/{id}`` with create's body
  (``{"security_group": {"name": ..., "description": ...}}``, XML
  ``<security_group name="..."><description>...</description></security_group>``)
  and create's checks: ``name`` is required, a ``description`` left out keeps
  the group's (Nova required both). It answers 200 with the group and its
  rules. An unknown group, or another project's, is 404; ``default`` is never
  updated: 400 "Unable to update system group 'default'" (Nova's); a name
  another group has is 400, as for create. Servers name their groups, so the
  network service renames the group on every server that has it, in the same
  transaction: a server's ``security_groups`` shows the new name at once, as
  Nova's (which kept group ids) did.
* Deleting a group that servers use is allowed, as section 2.3.2 describes:
  the group is taken off those servers (their ``security_groups`` no longer
  name it) and its rules no longer apply to them. Nova refused with 400
  "Security group is still in use"; the spec says otherwise and wins. Rules of
  other groups that name the deleted group as their source go with it.
* A group id that is not an integer is 404, like an unknown one (Nova said 400
  "Security group id should be integer"): the openstack CLI looks a group up
  by ``GET os-security-groups/<name or id>`` and falls back to the list only
  on 404.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from aiohttp import web

from services.api import quotas
from services.api.keys import POOL, RPC
from services.api.queries import security_groups as q
from services.api.representation import View, parse_body, represented, route
from services.api.resources.common import principal
from services.api.status_codes import Op, status_for
from services.api.views import security_groups as views
from shared.contracts.security_groups import (
    CreateSecurityGroup,
    DeleteSecurityGroup,
    EnsureDefaultGroup,
    GroupInfo,
    SecurityGroupClient,
    UpdateSecurityGroup,
)
from shared.errors import BadRequest, NotFound

MAX_LENGTH = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DIGITS = re.compile(r"[0-9]{1,18}")  # fits a bigint


def client(request: web.Request) -> SecurityGroupClient:
    return SecurityGroupClient(request.app[RPC], request_id=request["request_id"])


async def ensure_default(request: web.Request, project_id: str) -> None:
    """Have the network service make the project's ``default`` group if it is missing."""
    async with request.app[POOL].acquire() as conn:
        if await q.default_exists(conn, project_id):
            return
    await client(request).ensure_default(EnsureDefaultGroup(project_id=project_id))


def parse_id(raw: object, what: str = "Security group") -> int | None:
    """An integer id as the API takes it (path, JSON int or string, XML text)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if 0 <= raw < 2**63 else None
    if isinstance(raw, str) and _DIGITS.fullmatch(raw.strip()):
        return int(raw.strip())
    return None


def group_id_from_path(request: web.Request) -> int:
    raw = request.match_info["security_group_id"]
    gid = parse_id(raw)
    if gid is None:
        raise NotFound(f"Security group {raw} not found.")
    return gid


def check_property(value: object, prop: str, *, required: bool = True) -> str:
    """A name or description: a string of 1 to 255 characters once trimmed."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"Security group {prop} is not a string or unicode")
    text = value.strip()
    if not text:
        raise BadRequest(f"Security group {prop} has a minimum character requirement of 1.")
    if len(text) > MAX_LENGTH:
        raise BadRequest(f"Security group {prop} has more than {MAX_LENGTH} characters.")
    if _CONTROL.search(text):
        raise BadRequest(f"Security group {prop} must not contain control characters.")
    return text


async def _with_rules(conn: Any, rows: list[Any]) -> list[dict[str, Any]]:
    rules = await q.rules_of(conn, [r["id"] for r in rows])
    return [views.group(r, rules[r["id"]]) for r in rows]


@represented
async def list_groups(request: web.Request) -> View:
    pid = principal(request).project_id
    await ensure_default(request, pid)
    async with request.app[POOL].acquire() as conn, conn.transaction(readonly=True,
                                                                     isolation="repeatable_read"):
        groups = await _with_rules(conn, await q.list_for_project(conn, pid))
    return View({"security_groups": groups})


async def _group_body(request: web.Request) -> dict[str, Any]:
    """The ``security_group`` object of a create or update body (JSON or XML)."""
    body = (await parse_body(request, root="security_group"))["security_group"]
    if not isinstance(body, dict):
        raise BadRequest("The request body must hold a 'security_group' object.")
    return body


async def create(request: web.Request, project_id: str, name: str,
                 description: str) -> GroupInfo:
    """Have the network service make a checked group within the project's
    maxSecurityGroups (the compute API's create and the network endpoint's)."""
    async with request.app[POOL].acquire() as conn:
        limits = await quotas.absolute_limits(conn, project_id)
    return await client(request).create_group(CreateSecurityGroup(
        project_id=project_id, name=name, description=description,
        max_groups=limits["maxSecurityGroups"]))


@represented
async def create_group(request: web.Request) -> View:
    pid = principal(request).project_id
    body = await _group_body(request)
    name = check_property(body.get("name"), "name")
    description = check_property(body.get("description"), "description", required=False)
    made = await create(request, pid, name, description)
    return View({"security_group": views.group(msgspec.structs.asdict(made), [])},
                status=status_for(request, Op.CREATE_SECURITY_GROUP))


@represented
async def show_group(request: web.Request) -> View:
    pid = principal(request).project_id
    gid = group_id_from_path(request)
    await ensure_default(request, pid)
    async with request.app[POOL].acquire() as conn, conn.transaction(readonly=True,
                                                                     isolation="repeatable_read"):
        row = await q.get(conn, pid, gid)
        if row is None:
            raise NotFound(f"Security group {gid} not found.")
        (group,) = await _with_rules(conn, [row])
    return View({"security_group": group})


@represented
async def update_group(request: web.Request) -> View:
    pid = principal(request).project_id
    gid = group_id_from_path(request)
    body = await _group_body(request)
    name = check_property(body.get("name"), "name")
    raw = body.get("description")
    description = None if raw is None else check_property(raw, "description")
    updated = await client(request).update_group(UpdateSecurityGroup(
        project_id=pid, group_id=gid, name=name, description=description))
    rules = [msgspec.structs.asdict(r) for r in updated.rules]
    return View({"security_group": views.group(msgspec.structs.asdict(updated), rules)})


@represented
async def delete_group(request: web.Request) -> View:
    pid = principal(request).project_id
    gid = group_id_from_path(request)
    await client(request).delete_group(DeleteSecurityGroup(project_id=pid, group_id=gid))
    return View(None, status=202)


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/os-security-groups", list_groups)
    route(router, "POST", "/v2/{project_id}/os-security-groups", create_group)
    route(router, "GET", "/v2/{project_id}/os-security-groups/{security_group_id}", show_group)
    route(router, "PUT", "/v2/{project_id}/os-security-groups/{security_group_id}", update_group)
    route(router, "DELETE", "/v2/{project_id}/os-security-groups/{security_group_id}",
          delete_group)
