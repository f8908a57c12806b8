"""The asyncpg pool every service uses, with JSON columns decoded by msgspec."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import msgspec

from shared.config import DatabaseSettings

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, schema="pg_catalog", format="text",
                                  encoder=lambda v: _encode(v).decode(), decoder=_decode)


async def connect(dsn: str) -> asyncpg.Connection:
    """One connection with the same codecs as the pool's (for commands and tests)."""
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


async def create_pool(settings: DatabaseSettings) -> asyncpg.Pool:
    """Open a pool on ``settings.url``; JSON and JSONB map to Python values."""
    return await asyncpg.create_pool(
        settings.url, min_size=settings.pool_min, max_size=settings.pool_max,
        init=_init_connection)


@asynccontextmanager
async def pool_context(settings: DatabaseSettings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings)
    try:
        yield pool
    finally:
        await pool.close()
