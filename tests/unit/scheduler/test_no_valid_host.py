"""The fault text a user reads when no host takes their server."""

from __future__ import annotations

from services.scheduler.filters import default_filters, run_filters
from services.scheduler.host_state import HostSnapshot
from services.scheduler.no_valid_host import fault
from tests.unit.scheduler.factories import host, request


def test_ram_too_large_names_the_filter_and_the_numbers() -> None:
    hosts = [host("a", total_ram_mb=65536), host("b", total_ram_mb=32768)]
    out = run_filters(default_filters(), hosts, request(ram_mb=122880))
    f = fault(HostSnapshot(live=hosts), out)
    assert f.message == ("No valid host was found. Filter RamFilter returned 0 hosts "
                         "(needs 122880 MB RAM; largest free 65536 MB).")
    assert f.details.startswith("Filter RamFilter returned 0 hosts")
    assert "RamFilter 2->0" in f.details


def test_no_host_registered() -> None:
    f = fault(HostSnapshot(live=[]))
    assert f.message == "No valid host was found. No compute hosts are up (none has registered)."


def test_hosts_down_and_disabled() -> None:
    f = fault(HostSnapshot(live=[], down=2, disabled=1, service_down_time_s=30))
    assert f.message == ("No valid host was found. No compute hosts are up "
                         "(2 with no heartbeat for 30 s, 1 disabled).")


def test_zone_without_hosts() -> None:
    hosts = [host("a", availability_zone="az1")]
    out = run_filters(default_filters(), hosts, request(availability_zone="az9"))
    f = fault(HostSnapshot(live=hosts), out)
    assert "availability zone 'az9' has no host up" in f.message


def test_every_claim_lost() -> None:
    hosts = [host("a"), host("b")]
    out = run_filters(default_filters(), hosts, request())
    f = fault(HostSnapshot(live=hosts), out, tried=["a", "b"])
    assert f.message == ("No valid host was found. Every host that passed the filters ran out "
                         "of room before it could be claimed (tried a, b).")
