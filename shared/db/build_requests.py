"""SQL for ``build_requests``: what a server was created with, kept while it builds.

The API writes a server's build request (its ``ScheduleBuild`` message) in the
transaction that creates the server; it goes when the server leaves BUILD
(``shared.db.servers`` drops it on ACTIVE, ERROR and DELETED). While it
exists, the scheduler can send the build again to another host when the first
one died (``services.scheduler.reschedule``), and each attempt's host and why
it failed is kept beside it, for the next placement and for the fault.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import msgspec

from shared.contracts.scheduler import ScheduleBuild
from shared.rpc.envelope import encoder


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One host a build was sent to, and why it did not finish there."""

    host: str
    reason: str


_DECODE = msgspec.json.Decoder(ScheduleBuild)
_ATTEMPTS = msgspec.json.Decoder(list[Attempt])

_PUT = "INSERT INTO build_requests (server_id, body) VALUES ($1, $2)"

_GET = "SELECT body, attempts FROM build_requests WHERE server_id = $1 FOR UPDATE"

_ADD_ATTEMPT = """
UPDATE build_requests SET attempts = attempts || $2::jsonb WHERE server_id = $1
RETURNING attempts"""

_ATTEMPTS_OF = "SELECT attempts FROM build_requests WHERE server_id = $1"


async def put(conn: asyncpg.Connection, server_id: UUID, msg: ScheduleBuild) -> None:
    await conn.execute(_PUT, server_id, encoder.encode(msg))


async def get_for_update(conn: asyncpg.Connection,
                         server_id: UUID) -> tuple[ScheduleBuild, list[Attempt]] | None:
    """The server's build request and attempts so far, locked; None if it has none."""
    row = await conn.fetchrow(_GET, server_id)
    if row is None:
        return None
    return _DECODE.decode(row["body"]), msgspec.convert(row["attempts"], list[Attempt])


async def add_attempt(conn: asyncpg.Connection, server_id: UUID, attempt: Attempt) -> list[Attempt]:
    """Record a failed attempt; every attempt so far."""
    value = await conn.fetchval(_ADD_ATTEMPT, server_id, [msgspec.to_builtins(attempt)])
    return msgspec.convert(value or [], list[Attempt])


async def attempts(conn: asyncpg.Connection, server_id: UUID) -> list[Attempt]:
    """The hosts the server's build failed on so far (none if it has no request)."""
    value = await conn.fetchval(_ATTEMPTS_OF, server_id)
    return msgspec.convert(value or [], list[Attempt])


def describe(tried: list[Attempt]) -> str:
    """``2 hosts tried: a (why), b (why)``, for a fault."""
    hosts = "host" if len(tried) == 1 else "hosts"
    return f"{len(tried)} {hosts} tried: " + "; ".join(f"{a.host} ({a.reason})" for a in tried)
