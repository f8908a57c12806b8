"""Ordering of the hosts that passed the filters."""

from __future__ import annotations

import random

from services.scheduler.weighers import HostWeigher, RamWeigher, order_hosts
from tests.unit.scheduler.factories import host, request


def names(hosts) -> list[str]:
    return [h.host for h in hosts]


def test_most_free_ram_first() -> None:
    hosts = [host("a", used_ram_mb=60000), host("b", used_ram_mb=0), host("c", used_ram_mb=30000)]
    assert names(order_hosts([RamWeigher()], hosts, request())) == ["b", "c", "a"]


def test_free_ram_counts_the_ratio() -> None:
    # "a" has fewer MB installed but more left once overcommit is counted.
    hosts = [host("a", total_ram_mb=32768, ram_ratio=3.0), host("b", total_ram_mb=65536)]
    assert names(order_hosts([RamWeigher()], hosts, request())) == ["a", "b"]


def test_negative_multiplier_stacks() -> None:
    hosts = [host("a", used_ram_mb=60000), host("b", used_ram_mb=0), host("c", used_ram_mb=30000)]
    assert names(order_hosts([RamWeigher(-1.0)], hosts, request())) == ["a", "c", "b"]


def test_ties_break_by_name() -> None:
    hosts = [host("c"), host("a"), host("b")]
    assert names(order_hosts([RamWeigher()], hosts, request())) == ["a", "b", "c"]


def test_weighers_are_normalized_before_summing() -> None:
    class FewerVcpusUsed(HostWeigher):
        name = "VcpuWeigher"

        def weigh(self, host, req) -> float:
            return float(host.free_vcpus)

    # RAM differs by thousands of MB, VCPUs by a few; with a doubled multiplier
    # the VCPU weigher still wins because both are scaled to 0..1 first.
    hosts = [host("a", used_ram_mb=0, used_vcpus=30), host("b", used_ram_mb=30000, used_vcpus=0)]
    assert names(order_hosts([RamWeigher(1.0), FewerVcpusUsed(2.0)], hosts, request())) == ["b", "a"]
    assert names(order_hosts([RamWeigher(2.0), FewerVcpusUsed(1.0)], hosts, request())) == ["a", "b"]


def test_subset_draws_the_first_among_the_best() -> None:
    hosts = [host(n, used_ram_mb=i * 1000) for i, n in enumerate("abcde")]
    firsts = {order_hosts([RamWeigher()], hosts, request(), subset_size=3,
                          rng=random.Random(seed))[0].host for seed in range(60)}
    assert firsts == {"a", "b", "c"}
    ordered = order_hosts([RamWeigher()], hosts, request(), subset_size=3, rng=random.Random(1))
    assert sorted(names(ordered)) == list("abcde")
    assert names(ordered)[3:] == ["d", "e"]


def test_no_hosts() -> None:
    assert order_hosts([RamWeigher()], [], request()) == []
