"""The fault suite's cloud: every service as its own process, on a PostgreSQL and a
RabbitMQ of its own that the scenarios stop, kill and start again.

It never shares the other tests' servers (stopping those would break them): the
session starts private instances under a temporary directory (a watchdog removes
them if pytest dies), and a stack of api, scheduler, network, the console proxy
and three compute agents on them. Timings are shortened through configuration
only. The scale (how long each outage lasts, how many creates a second) comes
from ``NIMBUS_FAULTS_SCALE``: ``short`` (the default, run by ``make test``) or
``full`` (``make faults``, the issue's 10 s outages under 10 creates a second).

At the end the suite prints its table (see ``harness.Table``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.local import infra as local_infra
from tests.e2e.client import Api, Cloud, running_cloud
from tests.faults.harness import SCALES, Scale, Table
from tests.infra_fixtures import start_watchdog

REPO = Path(__file__).resolve().parents[2]

TABLE = Table()


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 (pytest's hook)
    if TABLE.rows:
        terminalreporter.write_sep("=", "fault suite")
        terminalreporter.write_line(TABLE.render())


@dataclass
class FaultInfra:
    """The suite's own PostgreSQL and RabbitMQ, and the faults done to them."""

    root: Path
    pg_port: int
    db_url: str
    amqp_url: str

    def stop_postgres(self) -> None:
        local_infra.stop_postgres(self.root, mode="fast")  # as `pg_ctl stop -m fast`

    def start_postgres(self) -> None:
        local_infra.start_postgres(self.root, self.pg_port, fast=True)

    def stop_rabbitmq_app(self) -> None:
        local_infra.rabbitmqctl(self.root, "stop_app")

    def start_rabbitmq_app(self) -> None:
        local_infra.rabbitmqctl(self.root, "start_app")

    def kill_rabbitmq(self) -> None:
        local_infra.kill_rabbitmq(self.root)

    def start_rabbitmq(self) -> None:
        local_infra.start_rabbitmq(self.root, *local_infra.rabbitmq_ports(self.root))


@pytest.fixture(scope="session")
def scale() -> Scale:
    name = os.environ.get("NIMBUS_FAULTS_SCALE", "short")
    if name not in SCALES:
        raise pytest.UsageError(f"NIMBUS_FAULTS_SCALE must be one of {', '.join(SCALES)}")
    return SCALES[name]


@pytest.fixture(scope="session")
def fault_infra() -> Iterator[FaultInfra]:
    local_infra.ensure_packages()
    root = Path(tempfile.mkdtemp(prefix="nimbus-faults-"))
    watchdog = start_watchdog(root)
    try:
        pg_port, amqp_port, dist_port, epmd_port = local_infra.free_ports(4)
        db_url = local_infra.start_postgres(root, pg_port, fast=True)
        amqp_url = local_infra.start_rabbitmq(root, amqp_port, dist_port, epmd_port)
        yield FaultInfra(root=root, pg_port=pg_port, db_url=db_url, amqp_url=amqp_url)
    finally:
        try:
            local_infra.clean(root, graceful=False)
        finally:
            watchdog.kill()
            watchdog.wait()
            shutil.rmtree(root, ignore_errors=True)


def stack_env(scale: Scale, infra: FaultInfra, run_dir: Path) -> dict[str, str]:
    return {
        "NIMBUS_DATABASE_URL": infra.db_url, "NIMBUS_AMQP_URL": infra.amqp_url,
        "NIMBUS_FAKE_STATE_DIR": str(run_dir / "guests"),
        "NIMBUS_FAKE_SPAWN_DELAY_S": str(scale.spawn_delay_s),
        "NIMBUS_FAKE_DESTROY_DELAY_S": "0.05",
        # Room for every server of the session on any one host.
        "NIMBUS_FAKE_RAM_MB": "100000000", "NIMBUS_FAKE_DISK_GB": "10000000",
        "NIMBUS_FAKE_VCPUS": "1000000",
        "NIMBUS_COMPUTE_HEARTBEAT_INTERVAL_S": "1",
        "NIMBUS_SCHEDULER_SERVICE_DOWN_TIME_S": str(scale.down_time_s),
        "NIMBUS_API_SERVICE_DOWN_TIME_S": str(scale.down_time_s),
        "NIMBUS_SCHEDULER_SWEEP_INTERVAL_S": "1",
        "NIMBUS_VOLUME_SERVICE_DOWN_TIME_S": str(scale.down_time_s),
        "NIMBUS_VOLUME_SWEEP_INTERVAL_S": "1",
        "NIMBUS_RECONCILE_INTERVAL_S": "2",
        # Outages here are short; the deadline is the users' patience, not theirs.
        "NIMBUS_AMQP_RETRY_DEADLINE_S": "120",
        "NIMBUS_AMQP_RETRY_MAX_DELAY_S": "2",
        "NIMBUS_LOG_LEVEL": "info",
    }


@pytest.fixture(scope="session")
async def fault_cloud(fault_infra: FaultInfra, scale: Scale) -> AsyncIterator[Cloud]:
    run_dir = Path(tempfile.mkdtemp(prefix="nimbus-faults-run-"))
    env = {**os.environ, **stack_env(scale, fault_infra, run_dir)}
    try:
        async with running_cloud(env, run_dir) as cloud:
            yield cloud
    finally:
        print(f"\n[faults] service logs kept in {run_dir / 'logs'}", file=sys.stderr)


async def _manage(cloud: Cloud, *args: str) -> None:
    env = {**os.environ, "NIMBUS_DATABASE_URL": cloud.db_url}
    env.pop("NIMBUS_CONFIG", None)
    result = await asyncio.to_thread(subprocess.run,
                                     [sys.executable, "-m", "services.api.manage", *args],
                                     env=env, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


TENANTS = 2
"""Projects per scenario; a full-scale scenario makes about 300 servers, spread over
them (each project's default network holds 1,021 and grows beyond)."""


@pytest.fixture
async def tenants(fault_cloud: Cloud, request: pytest.FixtureRequest) -> list[Api]:
    """Projects of the scenario's own with no quota and no rate limit in the way."""
    scenario = request.node.callspec.id if hasattr(request.node, "callspec") else "x"
    return [await _tenant(fault_cloud, f"f-{scenario}-{i}") for i in range(TENANTS)]


async def _tenant(fault_cloud: Cloud, name: str) -> Api:
    await _manage(fault_cloud, "create-project", name)
    await _manage(fault_cloud, "create-user", name, "--password", "pw", "--project", name)
    for key in ("maxTotalInstances", "maxTotalCores", "maxTotalRAMSize", "maxTotalVolumes",
                "maxTotalVolumeGigabytes"):
        await _manage(fault_cloud, "set-quota", name, key, "-1")
    await _manage(fault_cloud, "set-rate-limit", name, "POST", "*", ".*", "1000000", "MINUTE")
    await _manage(fault_cloud, "set-rate-limit", name, "POST", "*/servers",
                  r"^/servers(?:\.json|\.xml)?(?:\?.*)?$", "1000000", "DAY")
    return await fault_cloud.login(name, "pw", name)
