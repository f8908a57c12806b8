"""The scheduler-hint filters and the near weigher (section 4.4.10), on resolved placements."""

from __future__ import annotations

import uuid

from services.scheduler.filters import (
    DifferentHostFilter,
    NearFilter,
    SameHostFilter,
    default_filters,
    run_filters,
)
from services.scheduler.host_state import HostSnapshot
from services.scheduler.no_valid_host import fault
from services.scheduler.request import ServerPlacement
from services.scheduler.settings import SchedulerSettings
from services.scheduler.weighers import NearWeigher, default_weighers, order_hosts
from tests.unit.scheduler.factories import host, request

A, B, C = (str(uuid.uuid4()) for _ in range(3))
HOSTS = [host("cn1", availability_zone="az1"), host("cn2", availability_zone="az1"),
         host("cn3", availability_zone="az2")]
PLACED = {A: ServerPlacement(host="cn1", availability_zone="az1"),
          B: ServerPlacement(host="cn1", availability_zone="az1"),
          C: ServerPlacement(host="cn3", availability_zone="az2")}


def kept(flt, req) -> list[str]:
    return [h.host for h in HOSTS if flt.passes(h, req)]


class TestHintParsing:
    def test_ids_are_canonical_deduplicated_and_a_string_counts_as_one(self) -> None:
        req = request(hints={"same_host": [A.upper(), A], "different_host": B, "near": [C]})
        assert req.same_host == (A,)
        assert req.different_host == (B,)
        assert req.near == C
        assert req.referenced_servers == (A, B, C)

    def test_no_hints_reference_nothing(self) -> None:
        req = request()
        assert (req.same_host, req.different_host, req.near, req.referenced_servers) == \
            ((), (), None, ())

    def test_a_non_uuid_is_kept_and_never_found(self) -> None:
        req = request(hints={"same_host": ["not-a-uuid"]}, placements=PLACED)
        assert req.missing(req.same_host) == ["not-a-uuid"]


class TestSameHostFilter:
    def test_without_the_hint_it_does_not_run(self) -> None:
        assert not SameHostFilter().applies(request())
        assert kept(SameHostFilter(), request()) == ["cn1", "cn2", "cn3"]

    def test_keeps_only_the_host_of_every_listed_server(self) -> None:
        req = request(hints={"same_host": [A, B]}, placements=PLACED)
        assert kept(SameHostFilter(), req) == ["cn1"]

    def test_servers_on_different_hosts_leave_none(self) -> None:
        req = request(hints={"same_host": [A, C]}, placements=PLACED)
        assert kept(SameHostFilter(), req) == []
        assert SameHostFilter().explain(HOSTS, req) == f"servers {A}, {C} are on different hosts"

    def test_a_server_not_found_leaves_none(self) -> None:
        gone = str(uuid.uuid4())
        req = request(hints={"same_host": [A, gone]}, placements=PLACED)
        assert kept(SameHostFilter(), req) == []
        assert SameHostFilter().explain(HOSTS, req) == (
            f"server {gone} was not found, or is deleted or not placed on a host yet")

    def test_its_host_full_is_named_in_the_fault(self) -> None:
        # cn1 has no room: RamFilter drops it, then SameHostFilter finds nothing.
        hosts = [host("cn1", used_ram_mb=65536), host("cn2")]
        req = request(hints={"same_host": [A]}, placements=PLACED)
        out = run_filters(default_filters(), hosts, req)
        assert out.hosts == [] and out.steps[-1].name == "SameHostFilter"
        message = fault(HostSnapshot(live=hosts), out).message
        assert message == (f"No valid host was found. Filter SameHostFilter returned 0 hosts "
                           f"(server {A} is on a host that cannot take this server).")


class TestDifferentHostFilter:
    def test_without_the_hint_it_does_not_run(self) -> None:
        assert not DifferentHostFilter().applies(request(hints={"same_host": [A]}))

    def test_drops_every_host_running_a_listed_server(self) -> None:
        req = request(hints={"different_host": [A, C]}, placements=PLACED)
        assert kept(DifferentHostFilter(), req) == ["cn2"]

    def test_every_host_taken_leaves_none(self) -> None:
        req = request(hints={"different_host": [A]}, placements=PLACED)
        out = run_filters(default_filters(), [HOSTS[0]], req)
        assert out.hosts == []
        assert out.why_none == (f"Filter DifferentHostFilter returned 0 hosts (every host that "
                                f"could take this server runs one of server {A})")

    def test_a_server_not_found_leaves_none(self) -> None:
        gone = str(uuid.uuid4())
        req = request(hints={"different_host": [gone]}, placements=PLACED)
        assert kept(DifferentHostFilter(), req) == []
        assert "was not found" in DifferentHostFilter().explain(HOSTS, req)

    def test_same_and_different_host_of_one_server_cannot_be_met(self) -> None:
        req = request(hints={"same_host": [A], "different_host": [A]}, placements=PLACED)
        out = run_filters(default_filters(), HOSTS, req)
        assert out.hosts == []
        assert [(s.name, s.after) for s in out.steps][-2:] == [
            ("SameHostFilter", 1), ("DifferentHostFilter", 0)]
        assert out.why_none.startswith("Filter DifferentHostFilter returned 0 hosts")


class TestNearFilter:
    def test_without_the_hint_it_does_not_run(self) -> None:
        assert not NearFilter().applies(request())

    def test_keeps_the_zone_of_the_server(self) -> None:
        assert kept(NearFilter(), request(hints={"near": A}, placements=PLACED)) == ["cn1", "cn2"]
        assert kept(NearFilter(), request(hints={"near": C}, placements=PLACED)) == ["cn3"]

    def test_a_server_not_found_is_ignored(self) -> None:
        # near is a preference: without its server, the hint changes nothing.
        gone = str(uuid.uuid4())
        req = request(hints={"near": gone}, placements=PLACED)
        assert req.near == gone and req.near_placement is None
        assert not NearFilter().applies(req)
        assert kept(NearFilter(), req) == ["cn1", "cn2", "cn3"]
        out = run_filters(default_filters(), HOSTS, req)
        assert [h.host for h in out.hosts] == ["cn1", "cn2", "cn3"]
        assert "NearFilter" not in out.trail()

    def test_zone_without_room_is_explained(self) -> None:
        req = request(availability_zone="az1", hints={"near": C}, placements=PLACED)
        out = run_filters(default_filters(), HOSTS, req)
        assert out.why_none == ("Filter NearFilter returned 0 hosts (server "
                                f"{C} is in availability zone 'az2', where no host can take "
                                "this server)")


class TestNearWeigher:
    def test_scores_the_servers_own_host(self) -> None:
        req = request(hints={"near": A}, placements=PLACED)
        assert [NearWeigher().weigh(h, req) for h in HOSTS] == [1.0, 0.0, 0.0]
        assert [NearWeigher().weigh(h, request()) for h in HOSTS] == [0.0, 0.0, 0.0]
        unknown = request(hints={"near": str(uuid.uuid4())}, placements=PLACED)
        assert [NearWeigher().weigh(h, unknown) for h in HOSTS] == [0.0, 0.0, 0.0]

    def test_own_host_wins_over_more_free_ram(self) -> None:
        # cn1 has less free RAM, which alone would put cn2 first.
        hosts = [host("cn1", availability_zone="az1", used_ram_mb=32768),
                 host("cn2", availability_zone="az1")]
        weighers = default_weighers(SchedulerSettings())
        assert [h.host for h in order_hosts(weighers, hosts, request())] == ["cn2", "cn1"]
        req = request(hints={"near": A}, placements=PLACED)
        assert [h.host for h in order_hosts(weighers, hosts, req)] == ["cn1", "cn2"]

    def test_own_host_full_goes_elsewhere_in_the_zone(self) -> None:
        hosts = [host("cn1", availability_zone="az1", used_ram_mb=65536),
                 host("cn2", availability_zone="az1"), host("cn3", availability_zone="az2")]
        req = request(hints={"near": A}, placements=PLACED)
        out = run_filters(default_filters(), hosts, req)
        assert [h.host for h in out.hosts] == ["cn2"]
