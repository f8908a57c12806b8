"""Settings of one compute agent (one per hypervisor host)."""

from __future__ import annotations

import socket
from typing import Annotated

import msgspec

from services.compute_agent.drivers.fake import FakeSettings
from services.compute_agent.reconcile import ReconcileSettings
from shared.config import AmqpSettings, DatabaseSettings, HealthSettings, LogSettings


class ComputeSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = socket.gethostname()
    """Name of this host; its queue is ``compute.<host>``. Must be unique per agent."""
    az: str = "az1"
    """Availability zone of this host (``NIMBUS_COMPUTE_AZ``)."""
    driver: str = "fake"
    """Hypervisor driver: ``fake`` (simulated host)."""
    heartbeat_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    """Seconds between capacity reports; must stay well under the scheduler's
    ``service_down_time_s`` or the host is taken for dead."""
    ram_ratio: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    """RAM overcommit: the scheduler may place this multiple of the host's RAM."""
    cpu_ratio: Annotated[float, msgspec.Meta(gt=0)] = 4.0
    """vCPU overcommit per physical core."""
    disk_ratio: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    """Disk overcommit."""
    network_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    """How long a build waits for the network service before failing."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database: DatabaseSettings
    amqp: AmqpSettings
    log: LogSettings
    health: HealthSettings
    compute: ComputeSettings
    fake: FakeSettings
    reconcile: ReconcileSettings = ReconcileSettings()
