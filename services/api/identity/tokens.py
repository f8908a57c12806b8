"""Tokens: issue, look up, validate, revoke and purge.

A token id is 256 random bits; the database keeps only its SHA-256, so the
table cannot be replayed. A token stays valid while it has not expired, its
user and domain are enabled and, for a project-scoped token, the project and
its domain are enabled and the user still holds at least one of the roles the
token was issued with.

Roles are checked again at every validation, not only at issue: a token
carries the roles it was issued with that the user *still* holds on the
project. A user demoted (a role taken away) loses that role's power in every
token at once, and one removed from the project loses the tokens themselves.
A role granted later does not show in existing tokens (a token never speaks
for more than it did when issued); the next token has it.

:func:`validate_token` is what the compute API calls on every request: one
query on the ``tokens`` primary key plus primary-key joins, the current roles
taken from the ``role_assignments`` primary key in the same statement.

A token rescoped from another records its parent (``parent_hash``, migration
0010); the table's foreign key deletes a token's descendants with it, so
revoking a token revokes every token rescoped from it, transitively.
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
                    audit_id, audit_chain_id, parent_hash, issued_at, expires_at)
VALUES ($1, $2, $3, $4::text[], $5::text[], $6, $7, $8, $11, now(),
        COALESCE($9::timestamptz, now() + $10 * interval '1 second'))
RETURNING issued_at, expires_at"""

# ``held`` is the token's roles that the user still holds on its project
# (NULL when none is left, or for an unscoped token, which has no roles).
_LOOKUP = """
SELECT t.user_id, u.name AS user_name, u.domain_id AS user_domain_id,
       ud.name AS user_domain_name,
       t.project_id, p.name AS project_name, p.domain_id AS project_domain_id,
       pd.name AS project_domain_name,
       COALESCE(held.roles, '{}') AS roles, t.methods, t.api_version, t.audit_id,
       t.audit_chain_id, t.issued_at, t.expires_at
FROM tokens t
JOIN users u ON u.id = t.user_id AND u.enabled
JOIN domains ud ON ud.id = u.domain_id AND ud.enabled
LEFT JOIN projects p ON p.id = t.project_id
LEFT JOIN domains pd ON pd.id = p.domain_id
LEFT JOIN LATERAL (
    SELECT array_agg(r.name ORDER BY r.name) AS roles
    FROM role_assignments a JOIN roles r ON r.id = a.role_id
    WHERE a.user_id = t.user_id AND a.project_id = t.project_id
      AND r.name = ANY (t.roles)) held ON true
WHERE t.token_hash = $1 AND t.expires_at > now()
  AND (t.project_id IS NULL
       OR (p.enabled AND pd.enabled AND held.roles IS NOT NULL))"""

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
                      audit_chain_id: str | None = None,
                      parent_hash: bytes | None = None) -> IssuedToken:
    """Store a new token and return its id with the record it was stored as.

    ``expires_at`` (a rescoped token keeps its parent's) overrides ``ttl_s``;
    ``parent_hash`` (:func:`token_hash` of the token it was rescoped from) ties
    it to its parent's revocation. The caller checks that the user may have the
    scope.

    Raises:
        asyncpg.ForeignKeyViolationError: the parent token, the user or the
            project was deleted meanwhile.
    """
    token_id = secrets.token_urlsafe(32)
    audit_id = _new_audit_id()
    row = await conn.fetchrow(_INSERT, token_hash(token_id), user_id, project_id, list(roles),
                              list(methods), api_version, audit_id, audit_chain_id,
                              expires_at, float(ttl_s), parent_hash)
    record = TokenRecord(
        user_id=user_id, user_name=user_name, user_domain_id=user_domain_id,
        user_domain_name=user_domain_name, project_id=project_id, project_name=project_name,
        project_domain_id=project_domain_id, project_domain_name=project_domain_name,
        roles=tuple(roles), methods=tuple(methods), api_version=api_version,
        audit_id=audit_id, audit_chain_id=audit_chain_id,
        issued_at=row["issued_at"], expires_at=row["expires_at"])
    return IssuedToken(token_id=token_id, record=record)


async def lookup_token(conn: Executor, token: str | None) -> TokenRecord | None:
    """The record of a valid token, with the roles it still carries; None if
    unknown, expired, revoked, disabled, or its user holds none of its roles now."""
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
    a valid token: unknown, expired, revoked, its user/project disabled or
    removed, or the user no longer holds any of its roles on the project. The
    principal's roles are those of the token the user still holds. Expiry is
    compared with the database's clock."""
    record = await lookup_token(pool_or_conn, token)
    return None if record is None else record.principal()


async def revoke_token(conn: Executor, token: str) -> bool:
    """Delete the token and, through the table's foreign key, every token
    rescoped from it, transitively; True if the token existed."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return False
    return await conn.fetchval(_REVOKE, token_hash(token)) is not None


async def purge_expired_tokens(conn: Executor) -> int:
    """Delete the rows of expired tokens; return how many."""
    status = await conn.execute(_PURGE)
    return int(status.rsplit(" ", 1)[-1])
