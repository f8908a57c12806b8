"""A cloud whose servers are real QEMU virtual machines: every service as its own
process, the compute agents on the libvirt driver (QEMU's software emulation,
TCG), the seeded Nimbus Tiny Linux image built from Debian's packages."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deploy.local.hypervisor import stop_guests
from tests.e2e.client import Api, Cloud, running_cloud

REPO = Path(__file__).resolve().parents[2]

REAL_ENV = {
    "NIMBUS_COMPUTE_DRIVER": "libvirt",
    "NIMBUS_COMPUTE_HEARTBEAT_INTERVAL_S": "1",
    # A guest that ignores the power button is cut off after this (the tiny image
    # answers it at once).
    "NIMBUS_COMPUTE_SHUTDOWN_TIMEOUT_S": "30",
    "NIMBUS_SCHEDULER_SERVICE_DOWN_TIME_S": "10",
    "NIMBUS_API_SERVICE_DOWN_TIME_S": "10",
    "NIMBUS_RECONCILE_INTERVAL_S": "3",
    "NIMBUS_LOG_LEVEL": "debug",
    # VNC port ranges apart from make up's (15900...), so both can run at once.
    "NIMBUS_LIBVIRT_VNC_PORT_BASE": "25900",
}


@pytest.fixture(scope="session")
def tiny_image() -> Path:
    """Nimbus Tiny Linux, built once (cached under .run/ like make up's build)."""
    from deploy.guest_image import ensure_image
    return ensure_image(REPO / ".run" / "guest-image")


@pytest.fixture(scope="session")
async def real_cloud(infra, migrated_template, tiny_image) -> AsyncIterator[Cloud]:
    db_name = f"real_{uuid.uuid4().hex[:12]}"
    db_url = await infra.create_database(db_name, template=migrated_template)
    amqp_url = await infra.new_vhost()
    run_dir = Path(tempfile.mkdtemp(prefix="nimbus-real-"))
    env = {**os.environ, **REAL_ENV, "NIMBUS_DATABASE_URL": db_url, "NIMBUS_AMQP_URL": amqp_url,
           "NIMBUS_LIBVIRT_STATE_DIR": str(run_dir / "libvirt"),
           "NIMBUS_IMAGES_SEED_TINY": str(tiny_image)}
    try:
        async with running_cloud(env, run_dir) as c:
            yield c
    finally:
        # Whatever a failed test left running goes with the cloud.
        stop_guests(run_dir / "libvirt")
        await infra.drop_vhost(amqp_url)
        await infra.drop_database(db_name)


@pytest.fixture(scope="session")
async def real_demo(real_cloud: Cloud) -> Api:
    return await real_cloud.login("demo", "demo", "demo")
