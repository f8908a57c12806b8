"""Settings of the console proxy (``python -m services.consoleproxy``).

Every ``[consoleproxy]`` field can also be set as ``NIMBUS_CONSOLEPROXY_<FIELD>``
(``NIMBUS_CONSOLEPROXY_PUBLIC_URL``).
"""

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


class ConsoleProxySettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    """Address the proxy listens on (browsers connect here)."""
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 6080
    """Port of the proxy: its pages, websockets and ``GET /healthz``."""
    public_url: str = ""
    """Base URL browsers reach the proxy at; the console page opens its websocket
    there. Empty means the URL the page was requested on. The compute API writes
    console URLs with its own ``[api] console_proxy_url``: keep the two equal."""
    connect_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    """How long connecting to a guest's VNC server may take before the browser is
    told the console cannot be reached."""
    validate_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    """How long the proxy waits for a server's compute agent to confirm where its
    console is before telling the browser to try again (503)."""
    purge_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    """Seconds between sweeps deleting tokens long expired."""
    purge_after_s: Annotated[float, msgspec.Meta(ge=0)] = 3600.0
    """A token is deleted this long after it expired; until then a late use is
    refused as expired (rather than unknown)."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database: DatabaseSettings = DatabaseSettings()
    amqp: AmqpSettings = AmqpSettings()
    log: LogSettings = LogSettings()
    consoleproxy: ConsoleProxySettings = ConsoleProxySettings()
    shutdown: ShutdownSettings = ShutdownSettings()
    health: HealthSettings = HealthSettings()
    """A ``/healthz`` and ``/metrics`` of this process alone (``NIMBUS_HEALTH_PORT``),
    for replicas sharing ``port`` with SO_REUSEPORT."""
