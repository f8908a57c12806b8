"""``python -m deploy.kubernetes.wait_for_schema``: wait until the database is ready
for this image's services; the init container of every Nimbus pod on Kubernetes.

Ready means the migration Job (``manage migrate && manage bootstrap``) has done
its work for this image: every migration the image carries is recorded in
``schema_migrations``, and the seeded catalog (the last step of the bootstrap) is
there. A pod of a newer image therefore waits for the Job of its own release.
Reads ``NIMBUS_DATABASE_URL``; polls every ``--interval`` seconds (a database not
up yet is waited for too) and exits 0 when ready, 1 after ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import asyncpg

from shared.db.migrate import migration_files


async def missing(dsn: str) -> list[str]:
    """What the database still lacks: migration names, ``catalog``; or why it cannot be asked."""
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        return [f"database ({type(exc).__name__})"]
    try:
        try:
            done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        except asyncpg.UndefinedTableError:
            done = set()
        lacking = [p.name for p in migration_files() if p.name not in done]
        if not lacking and not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM flavors)"):
            lacking.append("catalog")
        return lacking
    finally:
        await conn.close()


async def wait(dsn: str, timeout: float, interval: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        lacking = await missing(dsn)
        if not lacking:
            print("schema ready", flush=True)
            return True
        if time.monotonic() > deadline:
            print(f"schema not ready after {timeout:.0f} s: {', '.join(lacking)}", flush=True)
            return False
        print(f"waiting for {', '.join(lacking[:3])}{' ...' if len(lacking) > 3 else ''}", flush=True)
        await asyncio.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.kubernetes.wait_for_schema")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args(argv)
    dsn = os.environ.get("NIMBUS_DATABASE_URL")
    if not dsn:
        print("NIMBUS_DATABASE_URL is not set", file=sys.stderr)
        return 2
    return 0 if asyncio.run(wait(dsn, args.timeout, args.interval)) else 1


if __name__ == "__main__":
    sys.exit(main())
