"""The floating IP pool's range and its settings (pure, no I/O)."""

import ipaddress

import pytest

from shared.config import load
from services.network.floating_ips import pool_range
from services.network.settings import Settings


@pytest.mark.parametrize(("cidr", "first", "count"), [
    ("15.126.0.0/24", "15.126.0.1", 254),    # not the network nor the broadcast address
    ("198.51.100.0/29", "198.51.100.1", 6),
    ("198.51.100.8/31", "198.51.100.8", 2),  # point to point: both
    ("198.51.100.9/32", "198.51.100.9", 1),
])
def test_pool_range(cidr: str, first: str, count: int) -> None:
    assert pool_range(ipaddress.IPv4Network(cidr)) == (ipaddress.IPv4Address(first), count)


def test_pool_settings() -> None:
    net = load(Settings, environ={"NIMBUS_NETWORK_FLOATING_POOL_NAME": "ext",
                                  "NIMBUS_NETWORK_FLOATING_POOL_CIDR": "198.51.100.0/24"}).network
    assert (net.floating_pool_name, net.floating_pool) == (
        "ext", ipaddress.IPv4Network("198.51.100.0/24"))
    assert net.reservation_ttl_s > 0 and net.reservation_sweep_interval_s > 0


@pytest.mark.parametrize(("field", "value"), [
    ("FLOATING_POOL_CIDR", "15.0.0.0/8"),     # a row per address: at most a /16
    ("FLOATING_POOL_CIDR", "15.126.0.1/24"),  # host bits set
    ("FLOATING_POOL_NAME", " "),
    ("RESERVATION_TTL_S", "0"),
])
def test_bad_pool_settings_stop_the_service_at_start(field: str, value: str) -> None:
    with pytest.raises(SystemExit, match=r"\[network\]"):
        load(Settings, environ={f"NIMBUS_NETWORK_{field}": value})
