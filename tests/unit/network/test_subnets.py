"""Carving the project supernet into subnets of a configurable prefix length."""

import ipaddress

import pytest

from services.network.errors import SupernetExhausted
from services.network.subnets import DEFAULT_PREFIXLEN, carve, index_after, of_cidr, subnet_count

SUPERNET = ipaddress.IPv4Network("10.0.0.0/8")


@pytest.mark.parametrize(("index", "cidr"), [
    (0, "10.0.0.0/22"),
    (1, "10.0.4.0/22"),
    (63, "10.0.252.0/22"),
    (64, "10.1.0.0/22"),
    (16383, "10.255.252.0/22"),
])
def test_by_default_index_n_is_the_nth_slash_22(index: int, cidr: str) -> None:
    assert DEFAULT_PREFIXLEN == 22
    assert str(carve(SUPERNET, index).cidr) == cidr


@pytest.mark.parametrize(("prefixlen", "index", "cidr", "hosts"), [
    (24, 1, "10.0.1.0/24", 253),
    (24, 256, "10.1.0.0/24", 253),
    (20, 3, "10.0.48.0/20", 4093),
    (28, 17, "10.0.1.16/28", 13),
    (29, 2, "10.0.0.16/29", 5),
    (30, 5, "10.0.0.20/30", 1),
])
def test_index_n_is_the_nth_block_of_the_prefix(prefixlen: int, index: int, cidr: str,
                                                hosts: int) -> None:
    subnet = carve(SUPERNET, index, prefixlen)
    assert (str(subnet.cidr), subnet.host_count) == (cidr, hosts)


def test_gateway_and_host_range() -> None:
    subnet = carve(SUPERNET, 1)
    assert (str(subnet.gateway), str(subnet.first_host), str(subnet.last_host)) == \
        ("10.0.4.1", "10.0.4.2", "10.0.7.254")
    assert subnet.host_count == 1021
    small = carve(SUPERNET, 1, 24)
    assert (str(small.gateway), str(small.first_host), str(small.last_host), small.host_count) == \
        ("10.0.1.1", "10.0.1.2", "10.0.1.254", 253)


def test_a_given_cidr_has_the_same_layout() -> None:
    subnet = of_cidr(ipaddress.IPv4Network("192.168.50.0/24"))
    assert (str(subnet.gateway), str(subnet.first_host), subnet.host_count) == \
        ("192.168.50.1", "192.168.50.2", 253)
    assert of_cidr(ipaddress.IPv4Network("192.168.50.0/30")).host_count == 1


@pytest.mark.parametrize(("prefixlen", "count"), [(22, 16384), (24, 65536), (16, 256), (8, 1),
                                                  (7, 0)])
def test_how_many_blocks_the_supernet_holds(prefixlen: int, count: int) -> None:
    assert subnet_count(SUPERNET, prefixlen) == count


def test_supernet_exhausted_names_supernet_and_prefix() -> None:
    with pytest.raises(SupernetExhausted, match=r"No /22 subnet left .* 10\.0\.0\.0/8"):
        carve(SUPERNET, 16384)
    assert str(carve(SUPERNET, 16383).cidr) == "10.255.252.0/22"


def test_small_supernet_runs_out_sooner() -> None:
    small = ipaddress.IPv4Network("192.168.4.0/27")
    assert [str(carve(small, i, 29).cidr) for i in range(4)] == [
        "192.168.4.0/29", "192.168.4.8/29", "192.168.4.16/29", "192.168.4.24/29"]
    with pytest.raises(SupernetExhausted):
        carve(small, 4, 29)


def test_supernet_not_on_a_block_boundary_is_carved_from_its_start() -> None:
    assert str(carve(ipaddress.IPv4Network("172.16.0.0/12"), 3, 24).cidr) == "172.16.3.0/24"


@pytest.mark.parametrize(("last", "prefixlen", "index"), [
    ("10.0.0.255", 24, 1),       # a /24 at 0 in the way of /24 number 0
    ("10.0.3.255", 24, 4),       # a /22 at 0 in the way of the /24s 0 to 3
    ("10.0.3.255", 22, 1),
    ("10.0.1.255", 22, 1),       # a /23 at 0: the next /22 boundary
    ("10.0.4.0", 22, 2),         # partly into block 1: skip it too
])
def test_index_after_a_block_in_the_way(last: str, prefixlen: int, index: int) -> None:
    assert index_after(SUPERNET, ipaddress.IPv4Address(last), prefixlen) == index
    assert carve(SUPERNET, index, prefixlen).cidr.network_address > ipaddress.IPv4Address(last)


def test_negative_index_is_a_bug() -> None:
    with pytest.raises(ValueError):
        carve(SUPERNET, -1)
