"""Each filter at its boundary, and the pipeline's bookkeeping."""

from __future__ import annotations

import pytest

from services.scheduler.filters import (AvailabilityZoneFilter, DiskFilter, ExcludedHostsFilter,
                                        RamFilter, VcpuFilter, default_filters, run_filters)
from tests.unit.scheduler.factories import host, request


class TestRamFilter:
    def test_exactly_enough_passes(self) -> None:
        assert RamFilter().passes(host(total_ram_mb=4096, used_ram_mb=2048), request(ram_mb=2048))

    def test_one_mb_short_fails(self) -> None:
        assert not RamFilter().passes(host(total_ram_mb=4096, used_ram_mb=2049), request(ram_mb=2048))

    def test_ratio_is_applied(self) -> None:
        # 4096 * 1.5 = 6144 usable; 4096 used leaves 2048.
        h = host(total_ram_mb=4096, ram_ratio=1.5, used_ram_mb=4096)
        assert RamFilter().passes(h, request(ram_mb=2048))
        assert not RamFilter().passes(h, request(ram_mb=2049))

    def test_fractional_overcommit_rounds_down(self) -> None:
        # 1001 * 1.5 = 1501.5 -> 1501 usable, as the claim's floor() counts it.
        h = host(total_ram_mb=1001, ram_ratio=1.5)
        assert h.free_ram_mb == 1501
        assert RamFilter().passes(h, request(ram_mb=1501))
        assert not RamFilter().passes(h, request(ram_mb=1502))


class TestDiskFilter:
    def test_exactly_enough_passes_one_less_fails(self) -> None:
        req = request(disk_gb=40)
        assert DiskFilter().passes(host(total_disk_gb=100, used_disk_gb=60), req)
        assert not DiskFilter().passes(host(total_disk_gb=100, used_disk_gb=61), req)

    def test_counts_ephemeral_and_swap_rounded_up(self) -> None:
        req = request(disk_gb=10, ephemeral_gb=5, swap_mb=1)  # 10 + 5 + 1 (swap rounds up)
        assert req.disk_gb == 16
        assert DiskFilter().passes(host(total_disk_gb=16), req)
        assert not DiskFilter().passes(host(total_disk_gb=15), req)

    def test_ratio_is_applied(self) -> None:
        h = host(total_disk_gb=100, disk_ratio=2.0, used_disk_gb=150)
        assert DiskFilter().passes(h, request(disk_gb=50))
        assert not DiskFilter().passes(h, request(disk_gb=51))


class TestVcpuFilter:
    def test_exactly_enough_passes_one_less_fails(self) -> None:
        req = request(vcpus=4)
        assert VcpuFilter().passes(host(total_vcpus=8, used_vcpus=4), req)
        assert not VcpuFilter().passes(host(total_vcpus=8, used_vcpus=5), req)

    def test_ratio_is_applied(self) -> None:
        # 8 cores at 16:1 is 128 VCPUs.
        h = host(total_vcpus=8, cpu_ratio=16.0, used_vcpus=124)
        assert VcpuFilter().passes(h, request(vcpus=4))
        assert not VcpuFilter().passes(h, request(vcpus=5))


class TestAvailabilityZoneFilter:
    def test_match_passes(self) -> None:
        assert AvailabilityZoneFilter().passes(host(availability_zone="az1"),
                                               request(availability_zone="az1"))

    def test_mismatch_fails(self) -> None:
        assert not AvailabilityZoneFilter().passes(host(availability_zone="az1"),
                                                   request(availability_zone="az2"))

    def test_no_zone_requested_passes_any(self) -> None:
        assert AvailabilityZoneFilter().passes(host(availability_zone="az1"),
                                               request(availability_zone=None))


class TestExcludedHostsFilter:
    def test_excluded_host_fails_others_pass(self) -> None:
        req = request(excluded_hosts=("cn1",))
        assert not ExcludedHostsFilter().passes(host("cn1"), req)
        assert ExcludedHostsFilter().passes(host("cn2"), req)


class TestPipeline:
    def test_records_each_filter_and_keeps_order(self) -> None:
        hosts = [host("a", availability_zone="az1"), host("b", availability_zone="az2"),
                 host("c", availability_zone="az1", used_ram_mb=65536)]
        out = run_filters(default_filters(), hosts, request(availability_zone="az1"))
        assert [h.host for h in out.hosts] == ["a"]
        assert [(s.name, s.before, s.after) for s in out.steps] == [
            ("ExcludedHostsFilter", 3, 3), ("AvailabilityZoneFilter", 3, 2),
            ("RamFilter", 2, 1), ("DiskFilter", 1, 1), ("VcpuFilter", 1, 1)]
        assert out.why_none is None
        assert out.trail().startswith("ExcludedHostsFilter 3->3, AvailabilityZoneFilter 3->2")

    def test_stops_at_the_filter_that_left_none(self) -> None:
        hosts = [host("a", total_ram_mb=65536), host("b", total_ram_mb=32768)]
        out = run_filters(default_filters(), hosts, request(ram_mb=122880))
        assert out.hosts == []
        assert [s.name for s in out.steps][-1] == "RamFilter"
        assert out.why_none == ("Filter RamFilter returned 0 hosts "
                                "(needs 122880 MB RAM; largest free 65536 MB)")

    @pytest.mark.parametrize(("kw", "expected"), [
        (dict(disk_gb=2000), "Filter DiskFilter returned 0 hosts (needs 2000 GB disk; largest free 1000 GB)"),
        (dict(vcpus=64), "Filter VcpuFilter returned 0 hosts (needs 64 VCPUs; largest free 32)"),
        (dict(availability_zone="az9"),
         "Filter AvailabilityZoneFilter returned 0 hosts (availability zone 'az9' has no host up)"),
        (dict(excluded_hosts=("a",)),
         "Filter ExcludedHostsFilter returned 0 hosts (every host that is up was excluded: a)"),
    ])
    def test_reason_of_each_filter(self, kw: dict, expected: str) -> None:
        out = run_filters(default_filters(), [host("a")], request(**kw))
        assert out.hosts == []
        assert out.why_none == expected

    def test_a_custom_filter_sees_the_hints(self) -> None:
        # The shape a scheduler-hint filter (issue-3) takes: it reads req.hints.
        from services.scheduler.filters import HostFilter

        class DifferentHost(HostFilter):
            name = "DifferentHostFilter"

            def passes(self, host, req) -> bool:
                return host.host not in req.hints.get("avoid", ())

        out = run_filters([*default_filters(), DifferentHost()], [host("a"), host("b")],
                          request(hints={"avoid": ["a"]}))
        assert [h.host for h in out.hosts] == ["b"]
        assert out.steps[-1].name == "DifferentHostFilter"
