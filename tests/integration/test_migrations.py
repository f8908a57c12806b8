"""Migrations: every file applies on real PostgreSQL, once, even with racing runners."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from shared.db.migrate import apply_migrations, migration_files


async def test_every_migration_applies_once_under_concurrency(infra):
    name = f"mig_{uuid.uuid4().hex[:10]}"
    dsn = await infra.create_database(name)
    try:
        results = await asyncio.gather(*(apply_migrations(dsn) for _ in range(4)))
        applied = [r for r in results if r]
        files = [p.name for p in migration_files()]
        assert len(applied) == 1 and applied[0] == files    # one runner did all, in order
        assert files == sorted(files) and all(f[:4].isdigit() for f in files)
        assert await apply_migrations(dsn) == []             # nothing left to do
        conn = await asyncpg.connect(dsn)
        try:
            recorded = [r["name"] for r in await conn.fetch(
                "SELECT name FROM schema_migrations ORDER BY name")]
            assert recorded == files
            tables = {r["tablename"] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            assert {"servers", "flavors", "images", "compute_hosts", "host_claims", "ports",
                    "projects", "users", "tokens"} <= tables
        finally:
            await conn.close()
    finally:
        await infra.drop_database(name)
