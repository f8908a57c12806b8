"""deploy/kubernetes/wait_for_schema.py, the init container of every Nimbus pod on
Kubernetes: it lets a service start only once the migration Job is done (every
migration of the image recorded, the catalog seeded), on a real PostgreSQL."""

from __future__ import annotations

import uuid

from deploy.kubernetes import wait_for_schema
from services.api.catalog import bootstrap_catalog
from shared.db.migrate import apply_migrations, migration_files
from shared.db.pool import connect
from shared.image_store import ImageStore


async def test_an_empty_database_lacks_every_migration_then_the_catalog(infra, tmp_path):
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = await infra.create_database(name)
    try:
        assert await wait_for_schema.missing(url) == [p.name for p in migration_files()]
        await apply_migrations(url)
        assert await wait_for_schema.missing(url) == ["catalog"]
        assert await wait_for_schema.wait(url, timeout=0, interval=0) is False
        conn = await connect(url)
        try:
            await bootstrap_catalog(conn, ImageStore(str(tmp_path)))
        finally:
            await conn.close()
        assert await wait_for_schema.missing(url) == []
        assert await wait_for_schema.wait(url, timeout=0, interval=0) is True
    finally:
        await infra.drop_database(name)


async def test_a_database_not_there_is_waited_for(infra):
    url = infra.database_url(f"absent_{uuid.uuid4().hex[:8]}")
    [reason] = await wait_for_schema.missing(url)
    assert reason == "database (InvalidCatalogNameError)"
    assert await wait_for_schema.wait(url, timeout=0, interval=0) is False


def test_main_needs_the_database_url(monkeypatch, capsys):
    monkeypatch.delenv("NIMBUS_DATABASE_URL", raising=False)
    assert wait_for_schema.main([]) == 2
    assert "NIMBUS_DATABASE_URL" in capsys.readouterr().err
