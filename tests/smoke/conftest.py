"""The smoke suite's target: a running cloud named by the environment, or one of its own.

``NIMBUS_SMOKE_AUTH_URL``, e.g. ``http://127.0.0.1:5000/v3``, names a running cloud
(`make up`, the compose cluster, Kubernetes...), reached as a user would: a token,
then the endpoints of its catalog. The user is CONTRACT.md's demo unless
``OS_USERNAME``, ``OS_PASSWORD`` and ``OS_PROJECT_NAME`` say otherwise. `make smoke`
sets it from ``OS_AUTH_URL`` when only that is set; the suite itself does not read
``OS_AUTH_URL``, so an openrc left in a developer's shell does not send `make test`
to another cloud.

Without it (`make test`), the suite starts a cloud of its own with the e2e
harness, so that it runs, and can fail, on every test run.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.smoke.client import Target, User


def credentials() -> tuple[str, str, str]:
    return (os.environ.get("OS_USERNAME", "demo"), os.environ.get("OS_PASSWORD", "demo"),
            os.environ.get("OS_PROJECT_NAME", "demo"))


@pytest.fixture(scope="session")
def target(request) -> Target:
    """A plain fixture, so that it can choose whether to start a cloud (an async
    fixture cannot ask for another)."""
    if url := os.environ.get("NIMBUS_SMOKE_AUTH_URL"):
        return Target(url, *credentials())
    return request.getfixturevalue("own_cloud")


@pytest.fixture(scope="session")
async def own_cloud(infra, migrated_template) -> AsyncIterator[Target]:
    """A cloud of the suite's own, every service a process (tests/e2e/client.py)."""
    from tests.e2e.client import fresh_cloud
    from tests.e2e.conftest import E2E_ENV
    async with fresh_cloud(infra, migrated_template, "smoke", E2E_ENV) as cloud:
        yield Target(f"{cloud.identity_url}/v3", "demo", "demo", "demo")


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@pytest.fixture(scope="session")
async def user(http, target) -> User:
    return await User.login(http, target)
