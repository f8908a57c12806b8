"""The ``[network]`` settings section: defaults and what a bad value does at start."""

import pytest

from shared.config import load
from services.network.settings import NetworkSettings, Settings


def test_defaults() -> None:
    net = load(Settings, environ={}).network
    assert net == NetworkSettings()
    assert (net.project_supernet, net.mac_prefix) == ("10.0.0.0/8", "fa:16:3e")
    assert (net.floating_pool_name, net.floating_pool_cidr) == ("public", "15.126.0.0/24")
    assert (net.default_prefixlen, net.max_subnets_per_network) == (22, 256)
    assert not net.floating_pool.overlaps(net.supernet)


def test_environment_overrides() -> None:
    net = load(Settings, environ={"NIMBUS_NETWORK_PROJECT_SUPERNET": "172.16.0.0/12",
                                  "NIMBUS_NETWORK_DEFAULT_NETWORK_NAME": "CloudHorizonNetwork"}).network
    assert str(net.supernet) == "172.16.0.0/12"
    assert net.default_network_name == "CloudHorizonNetwork"


def test_the_default_network_size_and_growth_limit_are_settings() -> None:
    net = load(Settings, environ={"NIMBUS_NETWORK_DEFAULT_PREFIXLEN": "28",
                                  "NIMBUS_NETWORK_MAX_SUBNETS_PER_NETWORK": "3"}).network
    assert (net.default_prefixlen, net.max_subnets_per_network) == (28, 3)


@pytest.mark.parametrize(("field", "value"), [
    ("PROJECT_SUPERNET", "10.0.0.0/23"),      # smaller than one /22 (the default prefix)
    ("DEFAULT_PREFIXLEN", "15"),              # a row per address: at most a /16
    ("DEFAULT_PREFIXLEN", "31"),              # no address left for a server
    ("MAX_SUBNETS_PER_NETWORK", "0"),
    ("FLOATING_POOL_CIDR", "10.200.0.0/24"),  # inside the project supernet
    ("PROJECT_SUPERNET", "10.0.0.1/8"),       # host bits set
    ("PROJECT_SUPERNET", "fd00::/8"),         # not IPv4
    ("MAC_PREFIX", "fb:16:3e"),               # multicast
    ("FLOATING_POOL_CIDR", "nonsense"),
])
def test_bad_values_stop_the_service_at_start(field: str, value: str) -> None:
    with pytest.raises(SystemExit, match=r"\[network\]"):
        load(Settings, environ={f"NIMBUS_NETWORK_{field}": value})
