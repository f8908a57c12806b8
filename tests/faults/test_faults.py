"""The fault suite: the operator's table of issue 9, done for real and checked.

Each scenario puts a steady create load on the stack, breaks one real part in the
middle of it (PostgreSQL stopped, RabbitMQ's app stopped, the broker killed, a
compute agent, the scheduler or the network service killed mid-build), puts it
back (or, for one agent, never), and checks what ``harness`` lists: every 202
ACTIVE, nothing stuck, nothing but 202 and 503 answered, no duplicate or leak.
The table of all scenarios is printed at the end of the session.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.client import Api, Cloud, eventually
from tests.faults.conftest import TABLE, FaultInfra
from tests.faults.harness import (
    Load,
    Outcome,
    Scale,
    check,
    guest_problems,
    guests_on_hosts,
    settle,
)

Step = Callable[[FaultInfra, Cloud], Awaitable[None]]


async def _thread(fn, *args) -> None:
    await asyncio.to_thread(fn, *args)


async def _kill(cloud: Cloud, name: str) -> None:
    await _thread(cloud.stack.kill, name, signal.SIGKILL)


async def _restart(cloud: Cloud, name: str) -> None:
    await _thread(cloud.stack.restart, name)


async def _nothing(infra: FaultInfra, cloud: Cloud) -> None:
    pass


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: Step
    undo: Step
    restart_after: tuple[str, ...] = ()
    """Services brought back after the checks (left dead during the scenario)."""
    immediate_undo: bool = False
    """Undo at once (a crashed process restarted by its supervisor), not after the outage."""
    victim_host: str | None = None
    """The compute host killed: the builds in flight on it are the ones to watch."""


SCENARIOS = [
    Scenario("PostgreSQL stopped, then started",
             lambda i, c: _thread(i.stop_postgres), lambda i, c: _thread(i.start_postgres)),
    Scenario("RabbitMQ app stopped, then started",
             lambda i, c: _thread(i.stop_rabbitmq_app),
             lambda i, c: _thread(i.start_rabbitmq_app)),
    Scenario("RabbitMQ killed -9, then started",
             lambda i, c: _thread(i.kill_rabbitmq), lambda i, c: _thread(i.start_rabbitmq)),
    Scenario("compute agent killed -9 mid-build, never restarted",
             lambda i, c: _kill(c, "compute-az1"), _nothing, restart_after=("compute-az1",),
             victim_host="compute-az1"),
    Scenario("compute agent killed -9 mid-build, restarted",
             lambda i, c: _kill(c, "compute-az2"), lambda i, c: _restart(c, "compute-az2"),
             immediate_undo=True, victim_host="compute-az2"),
    Scenario("scheduler killed -9 mid-build, restarted",
             lambda i, c: _kill(c, "scheduler"), lambda i, c: _restart(c, "scheduler"),
             immediate_undo=True),
    Scenario("network service killed -9 mid-build, restarted",
             lambda i, c: _kill(c, "network"), lambda i, c: _restart(c, "network"),
             immediate_undo=True),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[f"s{i}" for i in range(len(SCENARIOS))])
async def test_fault(scenario: Scenario, fault_infra: FaultInfra, fault_cloud: Cloud,
                     tenants: list[Api], scale: Scale) -> None:
    projects = [t.project_id for t in tenants]
    load = Load(tenants, scale, prefix=f"s-{scenario.name.split()[0].lower()}")
    load.start()
    await _pause(scale.lead_s)
    # The fault must hit work in flight, or the scenario proves nothing.
    in_flight = await eventually(lambda: _building(fault_cloud, projects, scenario.victim_host),
                                 timeout=30)
    fault_at = load.now()
    await scenario.fault(fault_infra, fault_cloud)
    # What the fault really hit: a build may finish on the victim host between the
    # list above and the kill (seen on a loaded machine); it is no work lost. Only
    # an agent's kill has a victim host, and only then is the database there to ask
    # (a PostgreSQL stop would fail this read and leave PostgreSQL down for the rest).
    hit = (await _building(fault_cloud, projects, scenario.victim_host)
           if scenario.victim_host else in_flight)
    if not scenario.immediate_undo:
        await _pause(scale.outage_s)
    await scenario.undo(fault_infra, fault_cloud)
    back_at = load.now()
    await _pause(scale.tail_s)
    answers = await load.stop()

    await _thread(fault_cloud.stack.wait_healthy, 120,
                  [n for n in fault_cloud.stack.services if n not in scenario.restart_after])
    settled_s = await settle(fault_cloud, projects, scale.settle_s)
    outcome = Outcome(scenario.name, answers, fault_at, back_at, settled_s=settled_s)
    await check(fault_cloud, outcome, projects)

    for name in scenario.restart_after:  # back for the next scenarios, and to reap its guests
        await _restart(fault_cloud, name)
    state_dir = Path(fault_cloud.stack.env["NIMBUS_FAKE_STATE_DIR"])
    outcome.problems += await _guests_settled(outcome, state_dir)
    TABLE.add(outcome)

    assert outcome.accepted, "no create was accepted at all"
    assert outcome.lost == 0, f"{outcome.lost} accepted server(s) lost"
    assert outcome.stuck == 0, [r for r in outcome.rows.values()
                                if r["vm_state"] == "building" or r["task_state"]]
    assert outcome.count("error") == 0, await _faults(fault_cloud, outcome)
    assert not outcome.other, f"answers other than 202/503: {dict(outcome.other)}"
    assert all(a.retry_after for a in answers if a.status == 503), "a 503 without Retry-After"
    assert outcome.problems == []
    # The builds the fault hit all finished, off the dead host if it stayed dead.
    assert all(outcome.rows[sid]["vm_state"] == "active" for sid in in_flight)
    if scenario.restart_after and scenario.victim_host:
        assert all(outcome.rows[sid]["host"] != scenario.victim_host for sid in hit)


async def _building(cloud: Cloud, projects: list[str], host: str | None) -> list[str]:
    """The servers of the projects building right now (on ``host`` if given)."""
    conn = await cloud.db()
    try:
        rows = await conn.fetch(
            "SELECT id FROM servers WHERE project_id = ANY($1) AND vm_state = 'building' "
            "AND ($2::text IS NULL OR host = $2)", projects, host)
        return [str(r["id"]) for r in rows]
    finally:
        await conn.close()


async def _pause(seconds: float) -> None:
    """Let the scenario's clock run (the load goes on meanwhile): pacing, not waiting."""
    await asyncio.sleep(seconds)


async def _guests_settled(outcome: Outcome, state_dir: Path, timeout: float = 30.0) -> list[str]:
    """The guest problems left once the reconcile loops had time to reap orphans."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        problems = guest_problems(outcome, await asyncio.to_thread(guests_on_hosts, state_dir))
        if not problems or loop.time() > deadline:
            return problems
        await asyncio.sleep(0.5)


async def _faults(cloud: Cloud, outcome: Outcome) -> list[str]:
    conn = await cloud.db()
    try:
        ids = [sid for sid, r in outcome.rows.items() if r["vm_state"] == "error"]
        rows = await conn.fetch("SELECT DISTINCT message FROM server_faults "
                                "WHERE server_id = ANY($1::uuid[])", ids)
        return [r["message"] for r in rows]
    finally:
        await conn.close()
