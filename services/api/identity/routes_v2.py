"""Identity v2.0: tokens (password or token credentials) and the caller's tenants.

v2.0 sees only the Default domain: user and tenant names are looked up there.
"""

from __future__ import annotations

from aiohttp import web

from services.api.identity import accounts, auth, tokens, views
from services.api.identity.context import (caller, decode_body, json_response,
                                           login_guard, pool, settings)
from services.api.identity.errors import BadRequest, Forbidden, TokenNotFound
from services.api.identity.schemas import V2_DECODER

routes = web.RouteTableDef()


@routes.post("/v2.0/tokens")
async def create_token(request: web.Request) -> web.Response:
    body = (await decode_body(request, V2_DECODER)).auth
    db = pool(request)
    if body.passwordCredentials is not None:
        creds = body.passwordCredentials
        if creds.userId is None and creds.username is None:
            raise BadRequest("Expecting to find username or userId in passwordCredentials.")
        who = await auth.by_password(db, login_guard(request), password=creds.password,
                                     user_id=creds.userId,
                                     user_name=None if creds.userId else creds.username,
                                     domain_id=accounts.DEFAULT_DOMAIN_ID)
    elif body.token is not None:
        who = await auth.by_token(db, body.token.id)
    else:
        raise BadRequest("Expecting to find passwordCredentials or token in auth.")

    project = None
    if body.tenantId is not None:
        project = await auth.resolve_project(db, who, project_id=body.tenantId)
    elif body.tenantName is not None:
        project = await auth.resolve_project(db, who, project_name=body.tenantName,
                                             domain_id=accounts.DEFAULT_DOMAIN_ID)
    granted = await auth.grant(db, settings(request), who, project, api_version="v2.0")
    return json_response(views.access_v2(granted.issued.token_id, granted.issued.record,
                                         granted.roles, settings(request)))


async def _subject(request: web.Request) -> tokens.TokenRecord:
    """The token named in the path, if the caller may see it (itself or admin)."""
    me = await caller(request)
    subject = await tokens.lookup_token(pool(request), request.match_info["token_id"])
    if subject is None:
        raise TokenNotFound()
    if subject.user_id != me.user_id and "admin" not in me.roles:
        raise Forbidden()
    return subject


@routes.get("/v2.0/tokens/{token_id}")
async def validate_token(request: web.Request) -> web.Response:
    subject = await _subject(request)
    roles = await accounts.roles_by_name(pool(request), subject.roles)
    return json_response(views.access_v2(request.match_info["token_id"], subject, roles,
                                         settings(request)))


@routes.delete("/v2.0/tokens/{token_id}")
async def revoke_token(request: web.Request) -> web.Response:
    await _subject(request)
    await tokens.revoke_token(pool(request), request.match_info["token_id"])
    return web.Response(status=204)


@routes.get("/v2.0/tenants")
async def list_tenants(request: web.Request) -> web.Response:
    me = await caller(request)
    return json_response(views.tenants_v2(await accounts.user_projects(pool(request),
                                                                       me.user_id)))
