"""A cloud whose servers are real QEMU virtual machines: every service as its own
process, the compute agents on the libvirt driver (QEMU's software emulation,
TCG), the seeded Nimbus Tiny Linux image built from Debian's packages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.client import Api, Cloud, fresh_cloud

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
    settings = {**REAL_ENV, "NIMBUS_IMAGES_SEED_TINY": str(tiny_image)}
    async with fresh_cloud(infra, migrated_template, "real", settings) as c:
        yield c


@pytest.fixture(scope="session")
async def real_demo(real_cloud: Cloud) -> Api:
    return await real_cloud.login("demo", "demo", "demo")
