"""Authentication and scoping, shared by the v2.0 and v3 token APIs.

A request first proves who it is (:func:`by_password` or :func:`by_token`),
then picks a scope (:func:`resolve_project`), then :func:`grant` checks that
the user holds a role there and issues the token. Every failure of the first
step reads the same from outside ("requires authentication"), so the API does
not tell which user names exist.

A password login passes its :class:`LoginGuard` first: the throttle may refuse
it (429) before the database or the hash is touched, and the password gate may
refuse it (503) rather than queue the hash without bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

import asyncpg
import msgspec
import structlog

from services.api.identity import accounts, tokens
from services.api.identity.accounts import Executor, Project, Role
from services.api.identity.errors import BadRequest, ServiceUnavailable, Unauthorized
from services.api.identity.password_gate import PasswordGate
from services.api.identity.settings import IdentitySettings
from services.api.identity.throttle import LoginThrottle, user_key

log = structlog.get_logger(__name__)


class Authenticated(msgspec.Struct, frozen=True, kw_only=True):
    """A user whose credentials were checked, and how."""

    user_id: str
    user_name: str
    domain_id: str
    domain_name: str
    default_project_id: str | None
    methods: tuple[str, ...]
    expires_at: datetime | None = None
    """Set when rescoping: the new token expires with the one it came from."""
    audit_chain_id: str | None = None
    parent_hash: bytes | None = None
    """Set when rescoping: the stored hash of the token it came from, whose
    revocation then revokes the new one too."""


@dataclass(frozen=True)
class LoginGuard:
    """What stands between one request's password login and scrypt."""

    throttle: LoginThrottle
    gate: PasswordGate
    address: str
    """The client, as ``client_address`` counts it."""


class Grant(msgspec.Struct, frozen=True, kw_only=True):
    issued: tokens.IssuedToken
    roles: list[Role]


async def by_password(conn: Executor, guard: LoginGuard, *, password: str,
                      user_id: str | None = None, user_name: str | None = None,
                      domain_id: str | None = None,
                      domain_name: str | None = None) -> Authenticated:
    """Check a password for the user given by id, or by name within a domain.

    Raises:
        BadRequest: neither an id nor a name with its domain.
        TooManyRequests: the client or the user is throttled (nothing checked).
        ServiceUnavailable: too many password checks under way (nothing checked).
        Unauthorized: no such user, user or domain disabled, or wrong password.
    """
    if user_id is None and user_name is None:
        raise BadRequest("Expecting to find id or name in user.")
    if user_id is None and domain_id is None and domain_name is None:
        raise BadRequest("Expecting to find domain in user. The server could not comply "
                         "with the request since it is either malformed or otherwise "
                         "incorrect.")
    attempt = guard.throttle.begin(guard.address, user_key(user_id=user_id,
                                                           user_name=user_name))
    try:
        if user_id is not None:
            user = await accounts.find_user_by_id(conn, user_id)
        else:
            user = await accounts.find_user_by_name(conn, user_name or "", domain_id=domain_id,
                                                    domain_name=domain_name)
    except BaseException:  # the database failed us: no guess was made
        attempt.cancel()
        raise
    if user is not None:
        attempt.also(user_key(user_name=user.name) if user_id is not None
                     else user_key(user_id=user.id))
    # Only a full gate gives the reservation back: a client that hangs up while
    # its password is hashed keeps the failure's charge, as the hash is done anyway.
    try:
        # Verify even when there is no user, so that timing does not tell.
        ok = await guard.gate.verify(password, None if user is None else user.password_hash)
    except ServiceUnavailable:
        attempt.cancel()
        raise
    if user is None or not ok or not user.enabled:
        log.info("identity.auth_failed", method="password", user_id=user_id, user_name=user_name,
                 reason="unknown user" if user is None else
                 ("wrong password" if not ok else "disabled"))
        raise Unauthorized()
    attempt.succeeded()
    return Authenticated(user_id=user.id, user_name=user.name, domain_id=user.domain_id,
                         domain_name=user.domain_name,
                         default_project_id=user.default_project_id, methods=("password",))


async def by_token(conn: Executor, token: str) -> Authenticated:
    """Authenticate with an existing valid token, to rescope it.

    The new token keeps the old one's expiry and audit chain, its methods are
    ``token`` plus the old token's, and it is revoked with the old one.

    Raises:
        Unauthorized: the token is unknown, expired or revoked.
    """
    record = await tokens.lookup_token(conn, token)
    if record is None:
        log.info("identity.auth_failed", method="token", reason="invalid token")
        raise Unauthorized("The request you have made requires authentication.")
    user = await accounts.find_user_by_id(conn, record.user_id)
    if user is None:
        raise Unauthorized()
    methods = ("token",) + tuple(m for m in record.methods if m != "token")
    return Authenticated(user_id=record.user_id, user_name=record.user_name,
                         domain_id=record.user_domain_id, domain_name=record.user_domain_name,
                         default_project_id=user.default_project_id, methods=methods,
                         expires_at=record.expires_at,
                         audit_chain_id=record.audit_chain_id or record.audit_id,
                         parent_hash=tokens.token_hash(token))


async def resolve_project(conn: Executor, who: Authenticated, *, project_id: str | None = None,
                          project_name: str | None = None, domain_id: str | None = None,
                          domain_name: str | None = None) -> Project:
    """The project asked for as scope, by id or by name within a domain.

    Raises:
        BadRequest: neither an id nor a name with its domain.
        Unauthorized: no such project, or it or its domain is disabled.
    """
    if project_id is not None:
        project = await accounts.find_project_by_id(conn, project_id)
    elif project_name is not None:
        if domain_id is None and domain_name is None:
            raise BadRequest("Expecting to find domain in project. The server could not "
                             "comply with the request since it is either malformed or "
                             "otherwise incorrect.")
        project = await accounts.find_project_by_name(conn, project_name, domain_id=domain_id,
                                                      domain_name=domain_name)
    else:
        raise BadRequest("Expecting to find id or name in project.")
    if project is None or not project.enabled:
        _no_access(who, project_id or project_name or "")
    return project


async def default_project(conn: Executor, who: Authenticated) -> Project | None:
    """Keystone v3's scope for a request that names none: the user's default
    project, if it is enabled and the user holds a role on it; else unscoped."""
    if who.default_project_id is None:
        return None
    project = await accounts.find_project_by_id(conn, who.default_project_id)
    if project is None or not project.enabled:
        return None
    if not await accounts.project_roles(conn, who.user_id, project.id):
        return None
    return project


async def grant(conn: Executor, settings: IdentitySettings, who: Authenticated,
                project: Project | None, *, api_version: str) -> Grant:
    """Issue a token for ``who``, scoped to ``project`` (None: unscoped).

    Raises:
        Unauthorized: the user holds no role on the project, or the token being
            rescoped (or the user, or the project) was deleted meanwhile.
    """
    roles: list[Role] = []
    if project is not None:
        roles = await accounts.project_roles(conn, who.user_id, project.id)
        if not roles:
            _no_access(who, project.id)
    try:
        issued = await tokens.issue_token(
            conn, user_id=who.user_id, user_name=who.user_name, user_domain_id=who.domain_id,
            user_domain_name=who.domain_name,
            project_id=None if project is None else project.id,
            project_name=None if project is None else project.name,
            project_domain_id=None if project is None else project.domain_id,
            project_domain_name=None if project is None else project.domain_name,
            roles=[r.name for r in roles], methods=who.methods, api_version=api_version,
            ttl_s=settings.token_ttl_s, expires_at=who.expires_at,
            audit_chain_id=who.audit_chain_id, parent_hash=who.parent_hash)
    except asyncpg.ForeignKeyViolationError:
        # A parent revoked between its check and this insert: the key refuses a
        # child that would outlive it.
        log.info("identity.auth_failed", user_id=who.user_id, reason="revoked meanwhile")
        raise Unauthorized() from None
    log.info("identity.token_issued", user_id=who.user_id,
             project_id=None if project is None else project.id,
             audit_id=issued.record.audit_id, api_version=api_version)
    return Grant(issued=issued, roles=roles)


def _no_access(who: Authenticated, project: str) -> NoReturn:
    log.info("identity.auth_failed", user_id=who.user_id, project=project,
             reason="no access to project")
    raise Unauthorized(f"User {who.user_id} has no access to project {project}")
