"""Carving the project supernet into per-network /24 subnets."""

import ipaddress

import pytest

from services.network.errors import SupernetExhausted
from services.network.subnets import carve, subnet_count

SUPERNET = ipaddress.IPv4Network("10.0.0.0/8")


@pytest.mark.parametrize(("index", "cidr"), [
    (0, "10.0.0.0/24"),
    (1, "10.0.1.0/24"),
    (255, "10.0.255.0/24"),
    (256, "10.1.0.0/24"),
    (65535, "10.255.255.0/24"),
])
def test_index_n_is_the_nth_slash_24(index: int, cidr: str) -> None:
    assert str(carve(SUPERNET, index).cidr) == cidr


def test_gateway_and_host_range() -> None:
    subnet = carve(SUPERNET, 1)
    assert str(subnet.gateway) == "10.0.1.1"
    assert str(subnet.first_host) == "10.0.1.2"
    assert str(subnet.last_host) == "10.0.1.254"
    assert subnet.host_count == 253


def test_supernet_exhausted() -> None:
    assert subnet_count(SUPERNET) == 65536
    with pytest.raises(SupernetExhausted, match="10.0.0.0/8"):
        carve(SUPERNET, 65536)


def test_small_supernet_runs_out_sooner() -> None:
    small = ipaddress.IPv4Network("192.168.4.0/23")
    assert [str(carve(small, i).cidr) for i in range(2)] == ["192.168.4.0/24", "192.168.5.0/24"]
    with pytest.raises(SupernetExhausted):
        carve(small, 2)


def test_supernet_not_on_a_slash_24_boundary_is_carved_from_its_start() -> None:
    assert str(carve(ipaddress.IPv4Network("172.16.0.0/12"), 3).cidr) == "172.16.3.0/24"


def test_negative_index_is_a_bug() -> None:
    with pytest.raises(ValueError):
        carve(SUPERNET, -1)
