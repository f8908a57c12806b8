"""Tokens: issue, look up, validate, revoke and purge.

A token id is 256 random bits; the database keeps only its SHA-256, so the
table cannot be replayed. A token stays valid while it has not expired, its
user and domain are enabled and, for a project-scoped token, the project is
enabled and the user still holds a role on it. The role names are a snapshot
taken at issue time; a role added later shows in the next token.

:func:`validate_token` is what the compute API calls on every request: one
query on the ``tokens`` primary key plus primary-key joins.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime

import msgspec

from services.api.identity.accounts import Executor

# Longer values are not tokens of ours; refused before touching the database.
MAX_TOKEN_LENGTH = 256


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who a valid token speaks for. ``project_id`` is None for an unscoped token,
    which the compute API must refuse."""

    user_id: str
    user_name: str
    project_id: str | None
    project_name: str | None
    domain_id: str
    """The user's domain."""
    roles: tuple[str, ...]
    expires_at: datetime

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


class TokenRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a token body is rendered from."""

    user_id: str
    user_name: str
    user_domain_id: str
    user_domain_name: str
    project_id: str | None
    project_name: str | None
    project_domain_id: str | None
    project_domain_name: str | None
    roles: tuple[str, ...]
    methods: tuple[str, ...]
    api_version: str
    audit_id: str
    audit_chain_id: str | None
    issued_at: datetime
    expires_at: datetime

    @property
    def audit_ids(self) -> list[str]:
        """Keystone's ``audit_ids``: this token's id, then its chain's first."""
        return [self.audit_id] + ([self.audit_chain_id] if self.audit_chain_id else [])

    def principal(self) -> Principal:
        return Principal(user_id=self.user_id, user_name=self.user_name,
                         project_id=self.project_id, project_name=self.project_name,
                         domain_id=self.user_domain_id, roles=self.roles,
                         expires_at=self.expires_at)


class IssuedToken(msgspec.Struct, frozen=True, kw_only=True):
    token_id: str
    """The secret handed to the client; nowhere else after this."""
    record: TokenRecord


_INSERT = """
INSERT INTO tokens (token_hash, user_id, project_id, roles, methods, api_version,
                    audit_id, audit_chain_id, issued_at, expires_at)
VALUES ($1, $2, $3, $4::text[], $5::text[], $6, $7, $8, now(),
        COALESCE($9::timestamptz, now() + $10 * interval '1 second'))
RETURNING issued_at, expires_at"""

_LOOKUP = """
SELECT t.user_id, u.name AS user_name, u.domain_id AS user_domain_id,
       ud.name AS user_domain_name,
       t.project_id, p.name AS project_name, p.domain_id AS project_domain_id,
       pd.name AS project_domain_name,
       t.roles, t.methods, t.api_version, t.audit_id, t.audit_chain_id,
       t.issued_at, t.expires_at
FROM tokens t
JOIN users u ON u.id = t.user_id AND u.enabled
JOIN domains ud ON ud.id = u.domain_id AND ud.enabled
LEFT JOIN projects p ON p.id = t.project_id
LEFT JOIN domains pd ON pd.id = p.domain_id
WHERE t.token_hash = $1 AND t.expires_at > now()
  AND (t.project_id IS NULL
       OR (p.enabled AND pd.enabled
           AND EXISTS (SELECT 1 FROM role_assignments a
                       WHERE a.user_id = t.user_id AND a.project_id = t.project_id)))"""

_REVOKE = "DELETE FROM tokens WHERE token_hash = $1 RETURNING user_id"

_PURGE = "DELETE FROM tokens WHERE expires_at <= now()"


def token_hash(token: str) -> bytes:
    """The SHA-256 under which ``token`` is stored."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def _new_audit_id() -> str:
    # Keystone's form: 16 random bytes, URL-safe base64 without padding.
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode("ascii")


async def issue_token(conn: Executor, *, user_id: str, user_name: str, user_domain_id: str,
                      user_domain_name: str, project_id: str | None = None,
                      project_name: str | None = None, project_domain_id: str | None = None,
                      project_domain_name: str | None = None, roles: Sequence[str] = (),
                      methods: Sequence[str], api_version: str, ttl_s: float,
                      expires_at: datetime | None = None,
                      audit_chain_id: str | None = None) -> IssuedToken:
    """Store a new token and return its id with the record it was stored as.

    ``expires_at`` (a rescoped token keeps its parent's) overrides ``ttl_s``;
    the caller checks that the user may have the scope.
    """
    token_id = secrets.token_urlsafe(32)
    audit_id = _new_audit_id()
    row = await conn.fetchrow(_INSERT, token_hash(token_id), user_id, project_id, list(roles),
                              list(methods), api_version, audit_id, audit_chain_id,
                              expires_at, float(ttl_s))
    record = TokenRecord(
        user_id=user_id, user_name=user_name, user_domain_id=user_domain_id,
        user_domain_name=user_domain_name, project_id=project_id, project_name=project_name,
        project_domain_id=project_domain_id, project_domain_name=project_domain_name,
        roles=tuple(roles), methods=tuple(methods), api_version=api_version,
        audit_id=audit_id, audit_chain_id=audit_chain_id,
        issued_at=row["issued_at"], expires_at=row["expires_at"])
    return IssuedToken(token_id=token_id, record=record)


async def lookup_token(conn: Executor, token: str | None) -> TokenRecord | None:
    """The record of a valid token; None if unknown, expired, revoked or disabled."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = await conn.fetchrow(_LOOKUP, token_hash(token))
    if row is None:
        return None
    data = dict(row)
    data["roles"] = tuple(data["roles"])
    data["methods"] = tuple(data["methods"])
    return TokenRecord(**data)


async def validate_token(pool_or_conn: Executor, token: str | None) -> Principal | None:
    """Who ``token`` (an ``X-Auth-Token`` value) speaks for, or None if it is not
    a valid token: unknown, expired, revoked, or its user/project disabled or
    removed. Expiry is compared with the database's clock."""
    record = await lookup_token(pool_or_conn, token)
    return None if record is None else record.principal()


async def revoke_token(conn: Executor, token: str) -> bool:
    """Delete the token; True if it existed. Tokens rescoped from it stay valid."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return False
    return await conn.fetchval(_REVOKE, token_hash(token)) is not None


async def purge_expired_tokens(conn: Executor) -> int:
    """Delete the rows of expired tokens; return how many."""
    status = await conn.execute(_PURGE)
    return int(status.rsplit(" ", 1)[-1])
