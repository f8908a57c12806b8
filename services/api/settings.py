"""Settings of the API process (compute API on 8774, identity on 5000)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from services.api.identity.settings import IdentitySettings
from shared.config import (
    AmqpSettings,
    DatabaseSettings,
    HealthSettings,
    LogSettings,
    ShutdownSettings,
)
from shared.image_store import ImageStoreSettings
from shared.states import VmState


class ApiSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    """Address the compute API listens on."""
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8774
    """Port of the compute API."""
    public_url: str = ""
    """Base URL written into links and Location headers; empty means the URL the
    request came in on (set it when a proxy or load balancer is in front)."""
    image_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 9292
    """Port of the image endpoint (a Glance v2 subset, ``services.api.glance``),
    on ``host``."""
    network_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 9696
    """Port of the network endpoint (a Neutron v2.0 subset, ``services.api.neutron``),
    on ``host``."""
    block_storage_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8776
    """Port of the block-storage endpoint (a Cinder v3 subset,
    ``services.api.cinder``), on ``host``."""
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1024 * 1024
    """Largest request body accepted; larger ones get 413 overLimit."""
    volume_default_zone: str = "az1"
    """The availability zone of a volume created without one (Cinder's
    ``default_availability_zone``); when no compute host is in it, the first zone
    by name."""
    service_down_time_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    """A compute host silent for longer counts as down: deleting one of its
    servers then frees the server here instead of waiting for the host. Keep it
    equal to the scheduler's ``service_down_time_s``."""
    stale_delete_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    """A delete still under way after this many seconds may be asked again."""
    console_proxy_url: str = "http://127.0.0.1:6080"
    """Public base URL of the console proxy (``services.consoleproxy``), written into
    the console URLs of os-getVNCConsole; keep it equal to the proxy's
    ``NIMBUS_CONSOLEPROXY_PUBLIC_URL``."""
    console_token_ttl_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    """Seconds a console URL's token stays usable (once). Longer gives a user more
    time to open the console; an unused URL that leaks stays usable as long."""
    hide_server_address_states: str = "building"
    """Comma-separated ``vm_state``s (``building``, ``active``, ``stopped``,
    ``rescued``, ``error``, ``deleted``) in which get and list detail show a
    server's ``addresses`` empty (os-hide-server-addresses, Nova's
    ``osapi_hide_server_address_states``); empty hides them never. Hiding them
    while building keeps clients from using an address before the guest is up;
    ``GET .../ips`` still shows them, as in Nova."""
    status_codes: Literal["spec", "nova"] = "spec"
    """Whose success codes the few operations where the spec and Nova disagree
    answer (``services.api.status_codes`` lists them): ``spec``, or ``nova`` for
    clients that accept only Nova's (gophercloud's keypair create takes 200 or
    201, not the spec's 202). Any other value fails at start."""

    def __post_init__(self) -> None:
        self.hidden_address_states()  # a typo fails at start, not per request

    def hidden_address_states(self) -> frozenset[VmState]:
        """The vm_states of ``hide_server_address_states``.

        Raises:
            ValueError: an entry is not a vm_state.
        """
        names = {part.strip().lower() for part in self.hide_server_address_states.split(",")}
        names.discard("")
        unknown = names - set(VmState)
        if unknown:
            raise ValueError(f"hide_server_address_states names no vm_state: "
                             f"{', '.join(sorted(unknown))}")
        return frozenset(VmState(name) for name in names)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database: DatabaseSettings
    amqp: AmqpSettings
    log: LogSettings
    api: ApiSettings
    identity: IdentitySettings
    images: ImageStoreSettings = ImageStoreSettings()
    shutdown: ShutdownSettings = ShutdownSettings()
    health: HealthSettings = HealthSettings()
    """A ``/healthz`` and ``/metrics`` of this process alone (``NIMBUS_HEALTH_PORT``):
    with several API processes on one port (SO_REUSEPORT) the shared port's answers
    come from any of them, so the supervisor and Prometheus ask each on its own port."""
