"""Fixtures the integration tests share: a database connection with the default
domain in place (``db``, for tests that make projects), an RPC client on the test's
own vhost, the network service running in-process on the test's database and vhost, and the
guest image and libvirt root of the real-hypervisor tests.

A module that needs them differently (another timeout, a bootstrapped pool)
defines its own fixture of the same name, which wins.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from services.network.app import create_worker as create_network_worker
from services.network.settings import Settings as NetworkSettings
from shared.config import AmqpSettings, DatabaseSettings
from shared.db.pool import connect as db_connect
from shared.rpc import RpcClient, connect
from shared.worker import Worker
from tests.integration.libvirt_guests import REPO, kill_guests, make_home


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await db_connect(db_url)
    await conn.execute("INSERT INTO domains (id, name) VALUES ('default', 'Default') "
                       "ON CONFLICT DO NOTHING")
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def rpc(amqp_url: str) -> AsyncIterator[RpcClient]:
    """An RPC client on the test's vhost (5 s call timeout)."""
    connection = await connect(amqp_url)
    client = RpcClient(connection, timeout=5)
    await client.start()
    yield client
    await client.close()
    await connection.close()


async def start_network(db_url: str, amqp_url: str) -> tuple[Worker, asyncio.Task[None]]:
    """The network service in-process, serving once this returns; stop it with
    ``worker.stop()`` and await the task."""
    worker = await create_network_worker(NetworkSettings(
        database=DatabaseSettings(url=db_url), amqp=AmqpSettings(url=amqp_url)))
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.started.wait(), 30)
    return worker, task


@pytest.fixture
async def network(db_url: str, amqp_url: str) -> AsyncIterator[Worker]:
    """The network service, for tests whose agent builds or deletes servers."""
    worker, task = await start_network(db_url, amqp_url)
    yield worker
    worker.stop()
    await task


@pytest.fixture(scope="session")
def tiny_image() -> Path:
    """Nimbus Tiny Linux, built once into ``.run/images`` (``NIMBUS_GUEST_IMAGE_DIR``
    overrides; the build is skipped while its inputs are unchanged)."""
    from deploy.guest_image import ensure_image
    from deploy.local import hypervisor
    hypervisor.ensure_packages()
    out = Path(os.environ.get("NIMBUS_GUEST_IMAGE_DIR", REPO / ".run" / "images"))
    return ensure_image(out)


@pytest.fixture(scope="session")
def libvirt_home(tiny_image: Path) -> Iterator[Path]:
    """The one embedded libvirt root this test process opens (``libvirt_guests``)."""
    path = make_home(tiny_image)
    yield path
    kill_guests(path)
    shutil.rmtree(path, ignore_errors=True)
