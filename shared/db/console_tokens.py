"""SQL for ``console_tokens``: the API issues a console token, the console proxy
spends it.

A token is a random secret handed to the user inside the console URL; only its
SHA-256 is stored. :func:`consume` is the one way to use a token: a single
guarded UPDATE that succeeds for one caller only, while the token is unused and
unexpired.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

import asyncpg

_INSERT = """
INSERT INTO console_tokens (token_sha256, server_id, project_id, console_type, host, port,
                            expires_at)
VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))
RETURNING expires_at"""

_CONSUME = """
UPDATE console_tokens SET used = true, used_at = now()
 WHERE token_sha256 = $1 AND console_type = $2 AND used = false AND expires_at > now()
RETURNING server_id, project_id, console_type, host, port"""

_VALID = """
SELECT server_id, project_id, console_type, host, port FROM console_tokens
 WHERE token_sha256 = $1 AND console_type = $2 AND used = false AND expires_at > now()"""

_STATE = """
SELECT used, expires_at <= now() AS expired, console_type FROM console_tokens
 WHERE token_sha256 = $1"""

_PURGE = "DELETE FROM console_tokens WHERE expires_at < now() - make_interval(secs => $1)"


class ConsoleTarget(NamedTuple):
    """What a valid token opens: a server's console and where its VNC server is."""

    server_id: UUID
    project_id: str
    console_type: str
    host: str
    port: int


def digest(token: str) -> bytes:
    """The SHA-256 a token is stored under."""
    return hashlib.sha256(token.encode()).digest()


async def issue(conn: asyncpg.Connection, token: str, *, server_id: UUID, project_id: str,
                console_type: str, host: str, port: int, ttl_s: float) -> datetime:
    """Store ``token`` (its digest) for ``ttl_s`` seconds; return when it expires."""
    return await conn.fetchval(_INSERT, digest(token), server_id, project_id, console_type,
                               host, port, float(ttl_s))


async def consume(conn: asyncpg.Connection, token: str,
                  console_type: str) -> ConsoleTarget | None:
    """Spend ``token`` (a token of ``console_type``): its target if it was unused and
    unexpired (and is now used), None otherwise. Atomic: of two callers racing
    with one token, one wins."""
    row = await conn.fetchrow(_CONSUME, digest(token), console_type)
    return None if row is None else ConsoleTarget(*row.values())


async def peek(conn: asyncpg.Connection, token: str,
               console_type: str) -> ConsoleTarget | None:
    """The target of a token of ``console_type`` that could still be used, without
    spending it."""
    row = await conn.fetchrow(_VALID, digest(token), console_type)
    return None if row is None else ConsoleTarget(*row.values())


async def why_unusable(conn: asyncpg.Connection, token: str, console_type: str) -> str:
    """Why a token was refused: ``unknown``, ``used``, ``expired`` or ``other_type``
    (a token of another console type), for the message."""
    row = await conn.fetchrow(_STATE, digest(token))
    if row is None:
        return "unknown"
    if row["used"]:
        return "used"
    if row["expired"]:
        return "expired"
    return "other_type" if row["console_type"] != console_type else "unknown"


async def purge(conn: asyncpg.Connection, older_than_s: float) -> int:
    """Delete tokens that expired more than ``older_than_s`` seconds ago; how many."""
    status = await conn.execute(_PURGE, float(older_than_s))
    return int(status.split()[-1])
