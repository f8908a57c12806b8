"""The whole system for end-to-end tests: every service as its own process.

One stack per session (api, scheduler, network and three compute agents) on a
database cloned from the migrated template and a vhost of its own, reached only
over HTTP, as a user would. Timings are shortened through configuration (fake
spawn delay, heartbeat), never by reaching into a service.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deploy.local.services import REPLICATED
from tests.e2e.client import Api, Cloud, fresh_cloud

REPO = Path(__file__).resolve().parents[2]

# Short enough to keep the suite quick, long enough to watch each BUILD(...) step.
E2E_ENV = {
    "NIMBUS_FAKE_SPAWN_DELAY_S": "0.5",
    "NIMBUS_FAKE_DESTROY_DELAY_S": "0.05",
    # Reboot, stop, start, rescue: long enough to see REBOOT, SHUTOFF's powering-off...
    "NIMBUS_FAKE_REBOOT_DELAY_S": "0.4",
    "NIMBUS_FAKE_POWER_OFF_DELAY_S": "0.3",
    "NIMBUS_FAKE_POWER_ON_DELAY_S": "0.3",
    "NIMBUS_FAKE_RESCUE_DELAY_S": "0.3",
    "NIMBUS_FAKE_SNAPSHOT_DELAY_S": "0.5",
    "NIMBUS_COMPUTE_HEARTBEAT_INTERVAL_S": "1",
    "NIMBUS_SCHEDULER_SERVICE_DOWN_TIME_S": "4",
    "NIMBUS_API_SERVICE_DOWN_TIME_S": "4",
    "NIMBUS_SCHEDULER_SWEEP_INTERVAL_S": "2",
    "NIMBUS_RECONCILE_INTERVAL_S": "2",
    "NIMBUS_LOG_LEVEL": "debug",
}


def e2e_replicas() -> dict[str, int] | None:
    """``NIMBUS_E2E_REPLICAS=N`` runs the session's cloud with N processes of each
    replicated service (the e2e suite, or part of it, against a scaled-out cloud)."""
    n = int(os.environ.get("NIMBUS_E2E_REPLICAS", "1"))
    return dict.fromkeys(REPLICATED, n) if n > 1 else None


@pytest.fixture(scope="session")
async def cloud(infra, migrated_template) -> AsyncIterator[Cloud]:
    # The fake driver records what each guest was given under guests/<host>/<server id>/
    # (tests read it through cloud.stack.env["NIMBUS_FAKE_STATE_DIR"]).
    async with fresh_cloud(infra, migrated_template, "e2e", E2E_ENV, e2e_replicas()) as c:
        yield c


@pytest.fixture(scope="session")
def replica_cloud(request) -> Cloud:
    """A cloud with two processes of each replicated service: the session's ``cloud``
    when ``NIMBUS_E2E_REPLICAS`` made it so, else one of its own (not both)."""
    return request.getfixturevalue("cloud" if e2e_replicas() else "own_replica_cloud")


@pytest.fixture(scope="session")
async def own_replica_cloud(infra, migrated_template) -> AsyncIterator[Cloud]:
    async with fresh_cloud(infra, migrated_template, "e2erep", E2E_ENV,
                           dict.fromkeys(REPLICATED, 2)) as c:
        yield c


@pytest.fixture(scope="session")
async def nova_cloud(infra, migrated_template) -> AsyncIterator[Cloud]:
    """A second stack, answering Nova's status codes where the spec's differ
    (``NIMBUS_API_STATUS_CODES=nova``); started only by the tests that ask for it."""
    async with fresh_cloud(infra, migrated_template, "e2enova",
                           {**E2E_ENV, "NIMBUS_API_STATUS_CODES": "nova"}) as c:
        yield c


@pytest.fixture(scope="session")
async def demo(cloud: Cloud) -> Api:
    return await cloud.login("demo", "demo", "demo")


@pytest.fixture(scope="session")
async def alt(cloud: Cloud) -> Api:
    return await cloud.login("alt", "alt", "alt")
