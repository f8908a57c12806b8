"""Identity v3: ``/v3/auth/tokens`` (issue, validate, revoke), the caller's catalog,
projects and domains, and a user's projects.

Only the ``password`` and ``token`` methods and project scope exist here; domain,
system and trust scopes are refused with 401, as Keystone refuses a scope the
user holds no role on.
"""

from __future__ import annotations

from aiohttp import web

from services.api.identity import accounts, auth, tokens, views
from services.api.identity.catalog import catalog_v3
from services.api.identity.context import (caller, decode_body, json_response,
                                           login_guard, pool, settings)
from services.api.identity.errors import (BadRequest, Forbidden, NotFound, TokenNotFound,
                                          Unauthorized)
from services.api.identity.schemas import Scope, V3_DECODER

routes = web.RouteTableDef()

_METHODS = frozenset({"password", "token"})


def _include_catalog(request: web.Request) -> bool:
    return "nocatalog" not in request.query


def _links(request: web.Request) -> dict[str, str | None]:
    base = settings(request).public_url.rstrip("/")
    return {"self": f"{base}{request.path}", "previous": None, "next": None}


@routes.post("/v3/auth/tokens")
async def create_token(request: web.Request) -> web.Response:
    body = (await decode_body(request, V3_DECODER)).auth
    db = pool(request)
    methods = set(body.identity.methods)
    if not methods <= _METHODS or len(methods) != 1:
        raise Unauthorized("Attempted to authenticate with an unsupported method.")
    if "password" in methods:
        if body.identity.password is None:
            raise BadRequest("Expecting to find password in identity.")
        user = body.identity.password.user
        domain = user.domain
        who = await auth.by_password(
            db, login_guard(request), password=user.password, user_id=user.id,
            user_name=None if user.id else user.name,
            domain_id=None if domain is None else domain.id,
            domain_name=None if domain is None or domain.id else domain.name)
    else:
        if body.identity.token is None:
            raise BadRequest("Expecting to find token in identity.")
        who = await auth.by_token(db, body.identity.token.id)

    scope = body.scope
    if scope == "unscoped":
        project = None
    elif scope is None:
        project = await auth.default_project(db, who)
    else:
        project = await _project_scope(request, who, scope)
    granted = await auth.grant(db, settings(request), who, project, api_version="v3")
    return json_response(
        views.token_v3(granted.issued.record, granted.roles, settings(request),
                       include_catalog=_include_catalog(request)),
        status=201, headers={"X-Subject-Token": granted.issued.token_id})


async def _project_scope(request: web.Request, who: auth.Authenticated,
                         scope: Scope) -> accounts.Project:
    if scope.domain is not None or scope.system is not None or scope.trust is not None:
        raise Unauthorized("Only project scope is supported; "
                           f"user {who.user_id} has no domain, system or trust roles.")
    if scope.project is None:
        raise BadRequest("Expecting to find project in scope.")
    ref = scope.project
    domain = ref.domain
    return await auth.resolve_project(
        pool(request), who, project_id=ref.id,
        project_name=None if ref.id else ref.name,
        domain_id=None if domain is None else domain.id,
        domain_name=None if domain is None or domain.id else domain.name)


async def _subject(request: web.Request) -> tokens.TokenRecord:
    """The token in ``X-Subject-Token``, if the caller may see it (itself or admin)."""
    me = await caller(request)
    subject_id = request.headers.get("X-Subject-Token")
    if not subject_id:
        raise BadRequest("Expecting to find X-Subject-Token in the request headers.")
    subject = await tokens.lookup_token(pool(request), subject_id)
    if subject is None:
        raise TokenNotFound()
    if subject.user_id != me.user_id and "admin" not in me.roles:
        raise Forbidden()
    return subject


@routes.get("/v3/auth/tokens")  # HEAD too: aiohttp answers it from GET without a body
async def validate_token(request: web.Request) -> web.Response:
    subject = await _subject(request)
    roles = await accounts.roles_by_name(pool(request), subject.roles)
    return json_response(
        views.token_v3(subject, roles, settings(request),
                       include_catalog=_include_catalog(request)),
        headers={"X-Subject-Token": request.headers["X-Subject-Token"]})


@routes.delete("/v3/auth/tokens")
async def revoke_token(request: web.Request) -> web.Response:
    await _subject(request)
    await tokens.revoke_token(pool(request), request.headers["X-Subject-Token"])
    return web.Response(status=204)


@routes.get("/v3/auth/catalog")
async def auth_catalog(request: web.Request) -> web.Response:
    me = await caller(request)
    if me.project_id is None:
        raise Forbidden("A project-scoped token is required to produce a service catalog.")
    return json_response({"catalog": catalog_v3(settings(request), me.project_id),
                          "links": _links(request)})


@routes.get("/v3/auth/projects")
async def auth_projects(request: web.Request) -> web.Response:
    me = await caller(request)
    projects = await accounts.user_projects(pool(request), me.user_id)
    return json_response(views.projects_v3(projects, settings(request), _links(request)))


@routes.get("/v3/auth/domains")
async def auth_domains(request: web.Request) -> web.Response:
    await caller(request)
    return json_response({"domains": [], "links": _links(request)})


@routes.get("/v3/users/{user_id}/projects")
async def user_projects(request: web.Request) -> web.Response:
    me = await caller(request)
    user_id = request.match_info["user_id"]
    if user_id != me.user_id:
        if "admin" not in me.roles:
            raise Forbidden()
        if await accounts.find_user_by_id(pool(request), user_id) is None:
            raise NotFound(f"Could not find user: {user_id}.")
    projects = await accounts.user_projects(pool(request), user_id)
    return json_response(views.projects_v3(projects, settings(request), _links(request)))


# Projects as Keystone's policy shows them: the list to admins only, one project
# to admins or to a token scoped to it. Clients resolve a project given by name
# or id through these (`openstack quota set --instances 5 demo`).
@routes.get("/v3/projects")
async def list_projects(request: web.Request) -> web.Response:
    me = await caller(request)
    if "admin" not in me.roles:
        raise Forbidden()
    projects = await accounts.all_projects(pool(request), name=request.query.get("name"),
                                           domain_id=request.query.get("domain_id"))
    return json_response(views.projects_v3(projects, settings(request), _links(request)))


@routes.get("/v3/projects/{project_id}")
async def show_project(request: web.Request) -> web.Response:
    me = await caller(request)
    project_id = request.match_info["project_id"]
    if "admin" not in me.roles and me.project_id != project_id:
        raise Forbidden()
    project = await accounts.find_project_by_id(pool(request), project_id)
    if project is None:
        raise NotFound(f"Could not find project: {project_id}.")
    return json_response({"project": views.project_v3(project, settings(request))})
