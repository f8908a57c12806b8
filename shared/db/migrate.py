"""Apply the numbered plain-SQL migrations in ``shared/db/migrations`` once each.

Each file runs in its own transaction and is recorded in ``schema_migrations``.
A PostgreSQL advisory lock serialises concurrent runners (every service may call
this at start), so a migration is never applied twice. Migrations are
forward-only and never edited once merged.

Run alone: ``python -m shared.db.migrate [DSN]``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import structlog

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x6E696D627573  # "nimbus"

log = structlog.get_logger(__name__)


def migration_files() -> list[Path]:
    return sorted(p for p in MIGRATIONS_DIR.glob("*.sql") if p.name[:4].isdigit())


async def apply_migrations(dsn: str) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now."""
    conn = await asyncpg.connect(dsn)
    applied_now: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
            done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
            for path in migration_files():
                if path.name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.name)
                applied_now.append(path.name)
                log.info("db.migration_applied", migration=path.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()
    return applied_now


def main() -> None:
    dsn = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NIMBUS_DATABASE_URL")
    if not dsn:
        raise SystemExit("usage: python -m shared.db.migrate DSN (or set NIMBUS_DATABASE_URL)")
    applied = asyncio.run(apply_migrations(dsn))
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none'}")


if __name__ == "__main__":
    main()
