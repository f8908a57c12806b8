"""Settings of one compute agent (one per hypervisor host)."""

from __future__ import annotations

import socket
from typing import Annotated

import msgspec

from services.compute_agent.drivers.fake import FakeSettings
from services.compute_agent.drivers.libvirt.settings import LibvirtSettings
from services.compute_agent.reconcile import ReconcileSettings
from shared.config import (
    AmqpSettings,
    DatabaseSettings,
    HealthSettings,
    LogSettings,
    ShutdownSettings,
)
from shared.image_store import ImageStoreSettings
from shared.volume_store import VolumeStoreSettings


class ComputeSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = socket.gethostname()
    """Name of this host; its queue is ``compute.<host>``. Must be unique per agent.
    With ``hosts`` > 1, the stem of the hosts' names (``agent.host_names``)."""
    hosts: Annotated[int, msgspec.Meta(ge=1)] = 1
    """How many hosts this agent process simulates (``NIMBUS_COMPUTE_HOSTS``), as Kolla
    runs many fake nova-computes: 1 is the host ``host``; N > 1 are ``<host>-0001``
    .. ``<host>-N``, each with its own driver, queue, heartbeat (host row) and
    capacity (the ``[fake]`` sizes are per host), all in ``az``. The fake driver only."""
    az: str = "az1"
    """Availability zone of this host (``NIMBUS_COMPUTE_AZ``)."""
    driver: str = "fake"
    """Hypervisor driver (``NIMBUS_COMPUTE_DRIVER``): ``fake`` (a simulated host) or
    ``libvirt`` (QEMU virtual machines); see ``drivers.DRIVERS``. Each reads its
    own section (``NIMBUS_FAKE_*``, ``NIMBUS_LIBVIRT_*``)."""
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
    shutdown_timeout_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    """How long a stop waits for the guest OS to shut down cleanly (ACPI power
    button) before the power is cut (Nova's ``shutdown_timeout``); 0 cuts it at once."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database: DatabaseSettings
    amqp: AmqpSettings
    log: LogSettings
    health: HealthSettings
    compute: ComputeSettings
    images: ImageStoreSettings = ImageStoreSettings()
    volumes: VolumeStoreSettings = VolumeStoreSettings()
    fake: FakeSettings = FakeSettings()
    libvirt: LibvirtSettings = LibvirtSettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    shutdown: ShutdownSettings = ShutdownSettings()
