"""SQL for ``compute_hosts`` and ``host_claims``: what each host has and what is taken.

A compute agent :func:`report`\\ s its totals (and so its heartbeat); the scheduler
reads :func:`live_hosts` and moves the ``used_*`` columns only through
:func:`claim` and :func:`release`, each a single guarded transaction, so that
concurrent builds, even from several scheduler processes, can never overcommit
a host: the capacity check and the increment are one ``UPDATE`` on the host's
row, which PostgreSQL serialises (in one statement with the claim's own row).

Whether a host is *down* (its work may be taken from it: builds rescheduled,
actions failed, deletes finished without it) is decided here only, and never
from a stale view: a host counts as down when its heartbeat is older than the
down time *and* the database has been up for longer than that *and* the
observer itself has reached the database for longer than that (``healthy_for_s``,
from ``shared.retry.OutageClock``). After a database restart, or an outage seen
by the observer, every host first gets a full down time to heartbeat again.
A host in that grace is neither live (no new servers go to it) nor down.

The usable amount of a resource is ``floor(total * ratio)``; the free amount is
that minus what the claims hold. Functions take a connection; a caller that
wants more in the same transaction opens one around them (theirs then become
savepoints).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec


_json = msgspec.json.Encoder()


def _json_text(value: object) -> str:
    return _json.encode(value).decode()


class HostCapacity(msgspec.Struct, frozen=True, kw_only=True):
    """What a compute agent offers: its totals, overcommit ratios and zone."""

    host: str
    availability_zone: str
    total_ram_mb: int
    total_disk_gb: int
    total_vcpus: int
    ram_ratio: float = 1.0
    disk_ratio: float = 1.0
    cpu_ratio: float = 1.0
    hypervisor_type: str = "fake"
    capabilities: dict[str, bool] | None = None
    """What the host's driver can do (``drivers.base.Capabilities``); None: unknown."""


class HostState(msgspec.Struct, kw_only=True):
    """One ``compute_hosts`` row as the scheduler sees it.

    ``free_*`` are computed from the row (``floor(total * ratio) - used``, the
    same arithmetic :func:`claim` guards with); ``alive`` says whether the
    host's heartbeat was recent enough when the row was read.
    """

    host: str
    availability_zone: str
    total_ram_mb: int
    total_disk_gb: int
    total_vcpus: int
    ram_ratio: float = 1.0
    disk_ratio: float = 1.0
    cpu_ratio: float = 1.0
    used_ram_mb: int = 0
    used_disk_gb: int = 0
    used_vcpus: int = 0
    disabled: bool = False
    disabled_reason: str | None = None
    id: int = 0
    """A stable number for the host (os-hypervisors and os-services name hosts by it)."""
    hypervisor_type: str = "fake"
    started_at: datetime | None = None
    last_heartbeat: datetime | None = None
    alive: bool = True
    """Heartbeat recent enough when the row was read: the host takes new servers."""
    down: bool = False
    """Silent for longer than the down time, with no excuse (see the module docstring)."""

    # floor(total * ratio), worked out once per row: the scheduler's filters and
    # weighers ask for the free amounts of every host for every build.
    usable_ram_mb: int = 0
    usable_disk_gb: int = 0
    usable_vcpus: int = 0

    def __post_init__(self) -> None:
        self.usable_ram_mb = math.floor(self.total_ram_mb * self.ram_ratio)
        self.usable_disk_gb = math.floor(self.total_disk_gb * self.disk_ratio)
        self.usable_vcpus = math.floor(self.total_vcpus * self.cpu_ratio)

    @property
    def free_ram_mb(self) -> int:
        return self.usable_ram_mb - self.used_ram_mb

    @property
    def free_disk_gb(self) -> int:
        return self.usable_disk_gb - self.used_disk_gb

    @property
    def free_vcpus(self) -> int:
        return self.usable_vcpus - self.used_vcpus


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """The resources one server holds on its host."""

    server_id: UUID
    host: str
    ram_mb: int
    disk_gb: int
    vcpus: int


def _report_set(src: str) -> str:
    """The columns a report sets, from the reported values in ``src`` (a row alias)."""
    return f"""
    availability_zone = {src}.availability_zone, total_ram_mb = {src}.total_ram_mb,
    total_disk_gb = {src}.total_disk_gb, total_vcpus = {src}.total_vcpus,
    ram_ratio = {src}.ram_ratio, disk_ratio = {src}.disk_ratio, cpu_ratio = {src}.cpu_ratio,
    started_at = CASE WHEN $11 THEN now() ELSE h.started_at END,
    last_heartbeat = now(), hypervisor_type = {src}.hypervisor_type,
    capabilities = {src}.capabilities"""


# Many hosts in one statement (an agent process may simulate hundreds: one
# statement per heartbeat interval, not one per host), from one array per column.
# Update first, insert only hosts never seen: an INSERT ... ON CONFLICT alone
# would draw a new ``id`` from the identity sequence at every heartbeat (defaults
# are computed before the conflict is found), and hosts first seen later would
# get ever larger ids. The ON CONFLICT still settles two first reports racing.
_REPORT = f"""
WITH given AS (
    SELECT g.host, g.availability_zone, g.total_ram_mb, g.total_disk_gb, g.total_vcpus,
           g.ram_ratio, g.disk_ratio, g.cpu_ratio, g.hypervisor_type,
           g.capabilities::jsonb AS capabilities
      FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::float8[],
                  $7::float8[], $8::float8[], $9::text[], $10::text[])
           AS g(host, availability_zone, total_ram_mb, total_disk_gb, total_vcpus, ram_ratio,
                disk_ratio, cpu_ratio, hypervisor_type, capabilities)),
updated AS (UPDATE compute_hosts AS h SET {_report_set("g")} FROM given g
             WHERE h.host = g.host RETURNING h.host)
INSERT INTO compute_hosts AS h (host, availability_zone, total_ram_mb, total_disk_gb, total_vcpus,
                                ram_ratio, disk_ratio, cpu_ratio, started_at, last_heartbeat,
                                hypervisor_type, capabilities)
SELECT g.host, g.availability_zone, g.total_ram_mb, g.total_disk_gb, g.total_vcpus,
       g.ram_ratio, g.disk_ratio, g.cpu_ratio, now(), now(), g.hypervisor_type, g.capabilities
  FROM given g
 WHERE g.host NOT IN (SELECT host FROM updated)
 ORDER BY g.host
ON CONFLICT (host) DO UPDATE SET {_report_set("EXCLUDED")}"""

# ``alive`` and ``down`` are computed by PostgreSQL with its own clock, so the
# scheduler's and the agents' clocks never need to agree.
def _down(down_s: str, healthy_for_s: str) -> str:
    """The one rule for "this host is down", over the parameters named."""
    return (f"(last_heartbeat < now() - make_interval(secs => {down_s}::double precision) "
            f"AND pg_postmaster_start_time() < now() - make_interval(secs => "
            f"{down_s}::double precision) "
            f"AND {healthy_for_s}::double precision >= {down_s}::double precision)")


_HOSTS = f"""
SELECT *, last_heartbeat >= now() - make_interval(secs => $1::double precision) AS alive,
       {_down("$1", "$3")} AS down
  FROM compute_hosts
 WHERE ($2 OR (NOT disabled AND last_heartbeat >= now() - make_interval(secs => $1::double precision)))
 ORDER BY host"""

_CLAIM_OF = "SELECT * FROM host_claims WHERE server_id = $1"

# The check, the increment and the claim's row in one statement: concurrent
# claims on one host queue on its row lock and each re-evaluates the WHERE
# against the committed used_* of the one before (READ COMMITTED's re-check of
# updated rows). $6 (NULL: not checked) also requires the host enabled and
# heartbeating within that many seconds, as the scheduler's view had it, so a
# view read a moment ago cannot place on a host disabled or dead since.
# `took` without `claimed`: a twin of the request claimed for the server between
# the NOT EXISTS and the insert; the caller gives the increment back.
_CLAIM = """
WITH taken AS (
    UPDATE compute_hosts
       SET used_ram_mb = used_ram_mb + $3, used_disk_gb = used_disk_gb + $4,
           used_vcpus = used_vcpus + $5
     WHERE host = $1
       AND floor(total_ram_mb * ram_ratio) - used_ram_mb >= $3
       AND floor(total_disk_gb * disk_ratio) - used_disk_gb >= $4
       AND floor(total_vcpus * cpu_ratio) - used_vcpus >= $5
       AND ($6::double precision IS NULL OR (NOT disabled AND
            last_heartbeat >= now() - make_interval(secs => $6::double precision)))
       AND NOT EXISTS (SELECT 1 FROM host_claims WHERE server_id = $2)
    RETURNING host),
claimed AS (
    INSERT INTO host_claims (server_id, host, ram_mb, disk_gb, vcpus)
    SELECT $2, host, $3, $4, $5 FROM taken
    ON CONFLICT (server_id) DO NOTHING
    RETURNING server_id)
SELECT EXISTS (SELECT 1 FROM taken) AS took, EXISTS (SELECT 1 FROM claimed) AS claimed"""

_GIVE_BACK = """
UPDATE compute_hosts
   SET used_ram_mb = GREATEST(used_ram_mb - $2, 0), used_disk_gb = GREATEST(used_disk_gb - $3, 0),
       used_vcpus = GREATEST(used_vcpus - $4, 0)
 WHERE host = $1"""


# GREATEST: a release must never fail on the used_* >= 0 checks, even if an
# operator edited the row by hand in between.
_RELEASE = """
WITH gone AS (DELETE FROM host_claims WHERE server_id = $1 RETURNING host, ram_mb, disk_gb, vcpus)
UPDATE compute_hosts h
   SET used_ram_mb = GREATEST(h.used_ram_mb - gone.ram_mb, 0),
       used_disk_gb = GREATEST(h.used_disk_gb - gone.disk_gb, 0),
       used_vcpus = GREATEST(h.used_vcpus - gone.vcpus, 0)
  FROM gone
 WHERE h.host = gone.host
RETURNING h.host"""


_SET_DISABLED = """
UPDATE compute_hosts SET disabled = $2, disabled_reason = CASE WHEN $2 THEN $3 END
 WHERE host = $1 RETURNING host"""


_ROW_FIELDS = tuple(f for f in HostState.__struct_fields__ if not f.startswith("usable_"))


def _state(row: asyncpg.Record) -> HostState:
    return HostState(**{name: row[name] for name in _ROW_FIELDS})


async def report(conn: asyncpg.Connection, cap: HostCapacity, *, starting: bool = False) -> None:
    """Record a host's capacity and heartbeat (``last_heartbeat = now()``).

    Creates the row on first report. ``used_*`` and ``disabled`` are kept: only
    claims move the former, only an operator the latter. Pass ``starting=True``
    on the agent's first report after it started, to set ``started_at``.
    """
    await report_many(conn, [cap], starting=starting)


async def report_many(conn: asyncpg.Connection, caps: Sequence[HostCapacity], *,
                      starting: bool = False) -> None:
    """:func:`report` for each of ``caps`` (distinct hosts), in one statement."""
    if not caps:
        return
    await conn.execute(
        _REPORT, [c.host for c in caps], [c.availability_zone for c in caps],
        [c.total_ram_mb for c in caps], [c.total_disk_gb for c in caps],
        [c.total_vcpus for c in caps], [c.ram_ratio for c in caps],
        [c.disk_ratio for c in caps], [c.cpu_ratio for c in caps],
        [c.hypervisor_type for c in caps],
        [None if c.capabilities is None else _json_text(c.capabilities) for c in caps], starting)


async def live_hosts(conn: asyncpg.Connection, max_age_s: float) -> list[HostState]:
    """Enabled hosts whose last heartbeat is at most ``max_age_s`` seconds old, by name."""
    return [_state(r) for r in await conn.fetch(_HOSTS, max_age_s, False, float("inf"))]


async def all_hosts(conn: asyncpg.Connection, max_age_s: float, *,
                    healthy_for_s: float = float("inf")) -> list[HostState]:
    """Every known host, disabled and dead ones too, each with ``alive`` and ``down`` set
    (``healthy_for_s``: see the module docstring)."""
    return [_state(r) for r in await conn.fetch(_HOSTS, max_age_s, True, healthy_for_s)]


async def set_disabled(conn: asyncpg.Connection, host: str, disabled: bool,
                       reason: str | None = None) -> bool:
    """Take a host out of (or back into) scheduling, saying why (enabling clears
    the reason); False if no such host."""
    return await conn.fetchval(_SET_DISABLED, host, disabled, reason) is not None


async def claim_of(conn: asyncpg.Connection, server_id: UUID) -> Claim | None:
    """The claim a server holds, if any."""
    row = await conn.fetchrow(_CLAIM_OF, server_id)
    if row is None:
        return None
    return Claim(server_id=row["server_id"], host=row["host"], ram_mb=row["ram_mb"],
                 disk_gb=row["disk_gb"], vcpus=row["vcpus"])


async def claim(conn: asyncpg.Connection, host: str, server_id: UUID, ram_mb: int,
                disk_gb: int, vcpus: int, *, live_within_s: float | None = None) -> bool:
    """Take ``ram_mb``/``disk_gb``/``vcpus`` on ``host`` for ``server_id``, if they fit.

    All or nothing, one statement: True when the server now holds the claim;
    False, with nothing changed, when the host lacks room (or is unknown, or,
    with ``live_within_s``, disabled or silent for longer than that). Idempotent:
    a server that already holds a claim on ``host`` gets True without counting
    twice. A server holds at most one claim: asking for another host while it
    holds one returns False (release it first).
    """
    row = await conn.fetchrow(_CLAIM, host, server_id, ram_mb, disk_gb, vcpus, live_within_s)
    if row["claimed"]:
        return True
    if row["took"]:  # a twin claimed for the server meanwhile: not twice
        await conn.execute(_GIVE_BACK, host, ram_mb, disk_gb, vcpus)
    held = await claim_of(conn, server_id)
    return held is not None and held.host == host


async def release(conn: asyncpg.Connection, server_id: UUID) -> bool:
    """Drop a server's claim and give its resources back; False if it held none."""
    async with conn.transaction():
        return await conn.fetchval(_RELEASE, server_id) is not None


_IS_DOWN = f"SELECT {_down('$2', '$3')} FROM compute_hosts WHERE host = $1"


_DOWN_HOSTS = f"SELECT host FROM compute_hosts WHERE {_down('$1', '$2')} ORDER BY host"


async def down_hosts(conn: asyncpg.Connection, max_age_s: float, *,
                     healthy_for_s: float) -> list[str]:
    """Every host that counts as down (see the module docstring), by name."""
    return [r["host"] for r in await conn.fetch(_DOWN_HOSTS, max_age_s, healthy_for_s)]


async def is_down(conn: asyncpg.Connection, host: str, max_age_s: float, *,
                  healthy_for_s: float = float("inf")) -> bool:
    """Whether ``host`` counts as down (see the module docstring): work may be taken
    from it. An unknown host is down; a host in its grace is not."""
    down = await conn.fetchval(_IS_DOWN, host, max_age_s, healthy_for_s)
    return down is None or bool(down)


async def is_alive(conn: asyncpg.Connection, host: str, max_age_s: float) -> bool:
    """Whether ``host`` may be handed work: it is not down (a host in its grace after a
    database restart is given the benefit of the doubt)."""
    return not await is_down(conn, host, max_age_s)


_CAPABILITIES = "SELECT hypervisor_type, capabilities FROM compute_hosts WHERE host = $1"


async def hypervisor_of(conn: asyncpg.Connection, host: str) -> tuple[str, dict[str, bool] | None]:
    """The host's hypervisor type and what its driver can do (None: not reported,
    an agent of an older release; an unknown host: ``("unknown", None)``)."""
    row = await conn.fetchrow(_CAPABILITIES, host)
    if row is None:
        return "unknown", None
    return row["hypervisor_type"], row["capabilities"]
