"""One agent process simulating several hosts (``NIMBUS_COMPUTE_HOSTS``), in-process
with the fake driver on real PostgreSQL and RabbitMQ: the heartbeat of every host
in one statement, and one reconcile pass over every host."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest

from services.compute_agent.agent import ComputeAgent, host_names, report_hosts
from services.compute_agent.drivers import HostResources
from services.compute_agent.drivers.fake import FakeDriver, FakeSettings
from services.compute_agent.reconcile import Reconciler, ReconcileSettings
from services.compute_agent.settings import ComputeSettings, Settings
from shared.config import AmqpSettings, DatabaseSettings, HealthSettings, LogSettings
from shared.contracts.common import FlavorSpec, ImageSpec
from shared.db import hosts
from shared.worker import Worker
from tests.unit.compute_agent.guests import guest_spec

FLAVOR = FlavorSpec(id="100", name="standard.xsmall", ram_mb=1024, disk_gb=10, vcpus=1)
IMAGE = ImageSpec(id=uuid.uuid4(), name="cirros")
FAKE = FakeSettings(spawn_delay_s=0, destroy_delay_s=0)


def _settings(db_url: str, amqp_url: str) -> Settings:
    return Settings(database=DatabaseSettings(url=db_url), amqp=AmqpSettings(url=amqp_url),
                    log=LogSettings(), health=HealthSettings(),
                    compute=ComputeSettings(host="many", az="az2", hosts=3), fake=FAKE)


@pytest.fixture
async def agents(db_url, amqp_url) -> AsyncIterator[list[ComputeAgent]]:
    settings = _settings(db_url, amqp_url)
    worker = Worker("many-test", database=settings.database, amqp=settings.amqp,
                    health=settings.health)
    await worker.open()
    worker.with_outbox()  # a reconcile's stop goes out through it (not started: kept here)
    yield [ComputeAgent(settings, worker, FakeDriver(FAKE, host=name), host=name)
           for name in host_names("many", 3)]
    await worker.rpc.close()
    await worker.connection.close()
    await worker.pool.close()


async def _rows(agent: ComputeAgent) -> dict[str, dict]:
    async with agent.worker.pool.acquire() as conn:
        rows = await conn.fetch("SELECT host, id, availability_zone, last_heartbeat, started_at "
                                "FROM compute_hosts ORDER BY host")
    return {r["host"]: dict(r) for r in rows}


async def test_every_host_heartbeats_in_one_statement_keeping_its_row(agents):
    await report_hosts(agents[0].worker, agents, starting=True)
    first = await _rows(agents[0])
    assert list(first) == ["many-0001", "many-0002", "many-0003"]
    assert [r["id"] for r in first.values()] == [1, 2, 3]
    assert {r["availability_zone"] for r in first.values()} == {"az2"}
    await report_hosts(agents[0].worker, agents)
    again = await _rows(agents[0])
    for host, row in again.items():
        assert row["id"] == first[host]["id"]
        assert row["started_at"] == first[host]["started_at"]  # only a start moves it
        assert row["last_heartbeat"] > first[host]["last_heartbeat"]


class _Unreachable(FakeDriver):
    async def host_resources(self) -> HostResources:
        raise OSError("the hypervisor does not answer")


async def test_a_host_that_cannot_report_is_left_out_and_ages(agents):
    await report_hosts(agents[0].worker, agents, starting=True)
    before = await _rows(agents[0])
    broken = ComputeAgent(agents[1].settings, agents[1].worker,
                          _Unreachable(FAKE, host=agents[1].host), host=agents[1].host)
    await report_hosts(agents[0].worker, [agents[0], broken, agents[2]])
    after = await _rows(agents[0])
    assert after["many-0002"]["last_heartbeat"] == before["many-0002"]["last_heartbeat"]
    assert after["many-0001"]["last_heartbeat"] > before["many-0001"]["last_heartbeat"]
    assert after["many-0003"]["last_heartbeat"] > before["many-0003"]["last_heartbeat"]
    with pytest.raises(OSError, match="does not answer"):  # none can: the heartbeat fails
        await report_hosts(agents[0].worker, [broken])


async def _server(agent: ComputeAgent, host: str, *, guest_on: ComputeAgent | None) -> uuid.UUID:
    """An ACTIVE server the database places on ``host``, its guest on ``guest_on``."""
    sid = uuid.uuid4()
    async with agent.worker.pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO servers (id, project_id, user_id, name, image_id, flavor_id, flavor,
                                    vm_state, power_state, host, availability_zone,
                                    reservation_id)
               VALUES ($1, 'p-many', 'u', 'vm', $2, '100', $3, 'active', 1, $4, 'az2', 'r')""",
            sid, IMAGE.id, msgspec.to_builtins(FLAVOR), host)
    if guest_on is not None:
        await guest_on.driver.spawn(guest_spec(server_id=sid, name="vm", flavor=FLAVOR,
                                               image=IMAGE))
    return sid


async def test_one_pass_reconciles_every_host_of_the_process(agents):
    a, b, c = agents
    await report_hosts(a.worker, agents, starting=True)
    in_order = [await _server(a, agent.host, guest_on=agent) for agent in agents]
    # The database places this one on b, but its guest runs on a: an orphan on a,
    # and lost on b.
    astray = await _server(a, b.host, guest_on=a)
    # This one's guest stopped on c behind the agent's back.
    stopped = in_order[2]
    c.driver.fake_host.stop(stopped)

    steps = await Reconciler(agents, ReconcileSettings()).reconcile()

    assert steps == {"DestroyOrphan": 1, "MarkLost": 1, "MarkStopped": 1}
    assert await a.driver.get_info(astray) is None
    async with a.worker.pool.acquire() as conn:
        states = {r["id"]: (r["vm_state"], r["task_state"]) for r in await conn.fetch(
            "SELECT id, vm_state, task_state FROM servers")}
    assert states[astray] == ("error", None)
    assert states[stopped] == ("active", "powering-off")  # the stop is under way...
    async with a.worker.pool.acquire() as conn:  # ...its message to c's own queue
        assert await conn.fetchval("SELECT queue FROM outbox") == f"compute.{c.host}"
    assert [states[s] for s in in_order[:2]] == [("active", None), ("active", None)]
    for agent, sid in zip(agents, in_order):
        assert await agent.driver.get_info(sid) is not None
