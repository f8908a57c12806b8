"""What the fault suite does around each fault: a steady create load, waiting for
everything to settle, the checks, and the table.

A scenario runs the load for ``lead_s``, does its fault, keeps it ``outage_s``,
undoes it, runs the load ``tail_s`` more, then waits until no server of the
scenario's project is in a transient state (or ``settle_s`` passes) and checks:

* every 202 ends ACTIVE (ERROR would need a reason unrelated to the fault, and
  none exists here: the hosts have room for everything), none is lost;
* nothing stays in a transient state (BUILD, a task) once the stack is healthy;
* every answer is a 202 or a 503 (with Retry-After); a request that hangs past
  ``request_timeout_s`` counts as another answer;
* no duplicates or leaks: one server per create, one port per ACTIVE server and
  none for the others, one claim per ACTIVE server on its own host, each host's
  used RAM equal to its claims, each create action finished, the outbox empty;
* each ACTIVE server's guest runs on its host and no other guest is left on any
  host (once the reconcile loop has had its turn).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import msgspec

from tests.e2e.client import Api, Cloud

TRANSIENT = "(vm_state = 'building' OR task_state IS NOT NULL)"


@dataclass(frozen=True)
class Scale:
    rate: float
    """Creates a second."""
    lead_s: float
    outage_s: float
    tail_s: float
    settle_s: float = 120.0
    spawn_delay_s: float = 2.0
    down_time_s: float = 5.0
    request_timeout_s: float = 30.0


SCALES = {
    # The issue's: 10 s outages under 10 creates a second.
    "full": Scale(rate=10, lead_s=5, outage_s=10, tail_s=10),
    # The same scenarios, shorter, for every `make test`.
    "short": Scale(rate=5, lead_s=3, outage_s=5, tail_s=5),
}


@dataclass
class Answer:
    at: float
    """Seconds since the load began."""
    status: int
    """HTTP status; 0 when no answer came within the request timeout."""
    server_id: str | None = None
    retry_after: bool = False


class Load:
    """Creates at a steady rate, spread over the given projects' users in turn (a
    project's default network holds 253 servers), each answer recorded, until
    ``stop()``."""

    def __init__(self, apis: list[Api], scale: Scale, prefix: str) -> None:
        self._apis, self._scale, self._prefix = apis, scale, prefix
        self.answers: list[Answer] = []
        self.started = time.monotonic()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def now(self) -> float:
        return time.monotonic() - self.started

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> list[Answer]:
        self._stop.set()
        assert self._task is not None
        await self._task
        return sorted(self.answers, key=lambda a: a.at)

    async def _run(self) -> None:
        from services.api.catalog import CIRROS_IMAGE_ID
        timeout = aiohttp.ClientTimeout(total=self._scale.request_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async def one(i: int) -> None:
                api = self._apis[i % len(self._apis)]
                url = f"{api.cloud.api_url}{api.path('/servers')}"
                at = self.now()
                body = {"server": {"name": f"{self._prefix}-{i}", "flavorRef": "100",
                                   "imageRef": str(CIRROS_IMAGE_ID)}}
                try:
                    async with session.post(url, json=body,
                                            headers={"X-Auth-Token": api.token}) as r:
                        data = await r.read()
                        sid = None
                        if r.status == 202:
                            sid = msgspec.json.decode(data)["server"]["id"]
                        self.answers.append(Answer(at, r.status, sid,
                                                   "Retry-After" in r.headers))
                except (asyncio.TimeoutError, aiohttp.ClientError):
                    self.answers.append(Answer(at, 0))

            pending: set[asyncio.Task[None]] = set()
            i = 0
            while not self._stop.is_set():
                i += 1
                task = asyncio.create_task(one(i))
                pending.add(task)
                task.add_done_callback(pending.discard)
                # Pacing the load (one create every 1/rate s), not waiting for anything.
                next_at = self.started + i / self._scale.rate
                try:
                    await asyncio.wait_for(self._stop.wait(), max(0.0, next_at - time.monotonic()))
                except asyncio.TimeoutError:
                    pass
            if pending:
                await asyncio.gather(*pending)


@dataclass
class Outcome:
    """What became of one scenario's requests, and every inconsistency found."""

    scenario: str
    answers: list[Answer]
    fault_at: float
    back_at: float
    settled_s: float = 0.0
    """Seconds from the end of the load until nothing was transient any more."""
    rows: dict[str, dict] = field(default_factory=dict)
    """server id -> its row, for every server of the project."""
    problems: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> list[str]:
        return [a.server_id for a in self.answers if a.status == 202 and a.server_id]

    def count(self, status: str) -> int:
        return sum(1 for sid in self.accepted if _status(self.rows.get(sid)) == status)

    @property
    def stuck(self) -> int:
        return sum(1 for r in self.rows.values() if _status(r) == "transient")

    @property
    def lost(self) -> int:
        return sum(1 for sid in self.accepted if sid not in self.rows)

    @property
    def unavailable(self) -> int:
        return sum(1 for a in self.answers if a.status == 503)

    @property
    def other(self) -> Counter[int]:
        return Counter(a.status for a in self.answers if a.status not in (202, 503))

    @property
    def ghosts(self) -> int:
        """Servers whose create was not answered 202 (a commit whose answer was lost)."""
        accepted = set(self.accepted)
        return sum(1 for sid in self.rows if sid not in accepted)

    @property
    def recovered_in(self) -> float | None:
        """Seconds from the fault's end to the first 202 after it."""
        after = [a.at for a in self.answers if a.status == 202 and a.at >= self.back_at]
        return round(min(after) - self.back_at, 1) if after else None


def _status(row: dict | None) -> str:
    if row is None:
        return "lost"
    if row["vm_state"] == "building" or row["task_state"] is not None:
        return "transient"
    return row["vm_state"]


async def settle(cloud: Cloud, project_ids: list[str], timeout: float) -> float:
    """Wait until no server of the projects is in a transient state (or the timeout);
    how long that took."""
    started = time.monotonic()
    while time.monotonic() < started + timeout:
        if not await cloud.fetchval(
                f"SELECT count(*) FROM servers WHERE project_id = ANY($1) AND {TRANSIENT}",
                project_ids):
            break
        await asyncio.sleep(0.5)
    return round(time.monotonic() - started, 1)


async def check(cloud: Cloud, outcome: Outcome, project_ids: list[str]) -> None:
    """Read every server of the projects and record each inconsistency in ``problems``."""
    conn = await cloud.db()
    try:
        rows = await conn.fetch("SELECT id, name, vm_state, task_state, host FROM servers "
                                "WHERE project_id = ANY($1)", project_ids)
        outcome.rows = {str(r["id"]): dict(r) for r in rows}
        p = outcome.problems
        for name, n in Counter(r["name"] for r in rows).items():
            if n > 1:
                p.append(f"{n} servers named {name}")
        ports = Counter(str(r["server_id"]) for r in await conn.fetch(
            "SELECT p.server_id FROM ports p JOIN servers s ON s.id = p.server_id "
            "WHERE s.project_id = ANY($1)", project_ids))
        claims = {str(r["server_id"]): r["host"] for r in await conn.fetch(
            "SELECT c.server_id, c.host FROM host_claims c JOIN servers s ON s.id = c.server_id "
            "WHERE s.project_id = ANY($1)", project_ids)}
        for sid, row in outcome.rows.items():
            active = row["vm_state"] == "active"
            if ports[sid] != (1 if active else 0):
                p.append(f"server {sid} ({row['vm_state']}) holds {ports[sid]} port(s)")
            if active and claims.get(sid) != row["host"]:
                p.append(f"server {sid} on {row['host']} claims on {claims.get(sid)}")
            if not active and sid in claims and row["vm_state"] != "building":
                p.append(f"server {sid} ({row['vm_state']}) still claims on {claims[sid]}")
        for r in await conn.fetch(
                "SELECT h.host, h.used_ram_mb, coalesce(sum(c.ram_mb), 0) AS claimed "
                "FROM compute_hosts h LEFT JOIN host_claims c ON c.host = h.host "
                "GROUP BY h.host, h.used_ram_mb"):
            if r["used_ram_mb"] != r["claimed"]:
                p.append(f"host {r['host']} counts {r['used_ram_mb']} MB used, claims hold "
                         f"{r['claimed']} MB")
        open_actions = await conn.fetchval(
            "SELECT count(*) FROM instance_actions WHERE project_id = ANY($1) "
            "AND action = 'create' AND finish_time IS NULL", project_ids)
        if open_actions:
            p.append(f"{open_actions} create action(s) never finished")
        if waiting := await conn.fetchval("SELECT count(*) FROM outbox"):
            p.append(f"{waiting} message(s) still in the outbox")
        dup_addresses = await conn.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM ports GROUP BY network_id, address "
            "HAVING count(*) > 1) d")
        if dup_addresses:
            p.append(f"{dup_addresses} fixed address(es) held by two ports")
    finally:
        await conn.close()


def guests_on_hosts(state_dir: Path) -> dict[str, list[str]]:
    """server id -> the hosts whose fake hypervisor holds a guest for it."""
    from services.compute_agent.drivers.fake_host import FakeHost
    found: dict[str, list[str]] = {}
    if not state_dir.exists():
        return found
    for host_dir in sorted(p for p in state_dir.iterdir() if p.is_dir()):
        for sid in FakeHost(state_dir, host_dir.name).ids():
            found.setdefault(str(sid), []).append(host_dir.name)
    return found


def guest_problems(outcome: Outcome, guests: dict[str, list[str]]) -> list[str]:
    problems = []
    for sid, row in outcome.rows.items():
        where = guests.get(sid, [])
        if row["vm_state"] == "active" and where != [row["host"]]:
            problems.append(f"ACTIVE server {sid} on {row['host']} has guests on {where}")
        if row["vm_state"] != "active" and where:
            problems.append(f"{row['vm_state']} server {sid} left guests on {where}")
    return problems


class Table:
    """The suite's summary, one row per scenario (printed at the end of the session)."""

    HEAD = ("scenario", "accepted (202)", "ACTIVE", "ERROR", "stuck", "lost", "503",
            "other answers", "ghosts", "problems", "202 again after", "all settled after")

    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []

    def add(self, o: Outcome) -> None:
        other = ", ".join(f"{n}x{s or 'no answer'}" for s, n in sorted(o.other.items())) or "0"
        back = f"{o.recovered_in} s" if o.recovered_in is not None else "-"
        self.rows.append((o.scenario, str(len(o.accepted)), str(o.count("active")),
                          str(o.count("error")), str(o.stuck), str(o.lost), str(o.unavailable),
                          other, str(o.ghosts), str(len(o.problems)), back,
                          f"{o.settled_s} s"))

    def render(self) -> str:
        cells = [self.HEAD, *self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.HEAD))]
        line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
        sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        return "\n".join([line(self.HEAD), sep, *(line(r) for r in self.rows)])
