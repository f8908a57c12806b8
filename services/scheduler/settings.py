"""Settings of the scheduler: the shared sections plus ``[scheduler]``."""

from __future__ import annotations

from typing import Annotated

import msgspec

from shared.config import (
    AmqpSettings,
    DatabaseSettings,
    HealthSettings,
    LogSettings,
    ShutdownSettings,
)


class SchedulerSettings(msgspec.Struct, frozen=True, kw_only=True):
    service_down_time_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    """Seconds since a host's last heartbeat after which it counts as down and
    gets no new servers. Keep it a few times the agents' heartbeat interval:
    lower notices a dead host sooner, but a host whose heartbeat is merely late
    (a busy database, a GC pause) drops out of scheduling for a while.
    Related: the compute agent's heartbeat interval."""

    host_subset_size: Annotated[int, msgspec.Meta(ge=1)] = 1
    """How many of the best-weighed hosts the first choice is drawn from at
    random. 1 always takes the best host; more spreads concurrent builds (and
    several scheduler processes) over several hosts so fewer of their claims
    collide, at the cost of a slightly worse first choice."""

    ram_weight_multiplier: float = 1.0
    """Weight of free RAM when hosts are ordered. Positive spreads servers over
    the hosts with most free RAM; negative stacks them onto the fullest host
    that still fits (packing); 0 ignores RAM."""

    near_weight_multiplier: float = 10.0
    """Weight of being the host of the server a ``near`` scheduler hint names.
    Well above the other multipliers makes that host win whenever it can take
    the server (the filters already keep only its zone); 0 leaves the choice
    within the zone to the other weighers."""

    max_concurrent_builds: Annotated[int, msgspec.Meta(ge=1)] = 16
    """Build requests handled at once by this process (the queue's prefetch).
    More raises throughput; each one in flight holds a database connection for
    a moment, so keep it near ``[database] pool_max``."""


    host_refresh_s: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    """How long this process reuses its view of the hosts (one query for all of
    them) before reading it again; it counts its own claims into it meanwhile.
    Claims re-check room, enabled and heartbeat in the database, so a stale view
    costs a retry, never a wrong placement. 0 reads the hosts for every build."""

    max_attempts: Annotated[int, msgspec.Meta(ge=1)] = 3
    """Hosts a build may be tried on in all (Nova's ``max_attempts``): a build whose
    host dies before it finished is scheduled again elsewhere until this many
    hosts were tried; then it ends in ERROR with a fault naming each one."""

    sweep_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    """Seconds between sweeps for builds that can no longer finish (see
    ``sweep.py``); lower frees stuck servers sooner for one cheap query more."""

    scheduling_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    """A server still in BUILD(scheduling) with no host after this many seconds
    is put in ERROR: its build request was lost (a scheduler died with it)."""

    build_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    """A server whose build has not moved for this many seconds is put in ERROR
    (Nova's instance_build_timeout). Keep it well above the slowest spawn."""

    action_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    """A server still in an action's task state (reboot, stop, start, rescue,
    unrescue, rebuild, snapshot) this many seconds after the task began is put
    in ERROR with a fault naming the action: its message or its agent was lost.
    Keep it well above the slowest action (a snapshot of a large disk); lower
    frees stuck servers sooner. Servers whose host stops heartbeating are failed
    after ``service_down_time_s`` instead."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database: DatabaseSettings = DatabaseSettings()
    amqp: AmqpSettings = AmqpSettings()
    log: LogSettings = LogSettings()
    health: HealthSettings = HealthSettings()
    shutdown: ShutdownSettings = ShutdownSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
