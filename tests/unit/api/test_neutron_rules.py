"""The network endpoint's translation of Neutron rules to Nimbus rules and back,
and Neutron's list filters and ``fields=``."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from services.api.neutron.common import filtered, only_fields
from services.api.neutron.security_groups import rule_view, to_compute_rule
from services.api.resources.security_group_rules import NewRule
from shared.errors import BadRequest, NotFound

BASE = {"security_group_id": "5", "direction": "ingress", "ethertype": "IPv4"}


@pytest.mark.parametrize(("body", "rule"), [
    ({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
      "remote_ip_prefix": "10.0.0.0/8"}, NewRule(5, "tcp", 22, 22, "10.0.0.0/8", None)),
    # No ports: every port; no source: anywhere.
    ({"protocol": "TCP"}, NewRule(5, "tcp", 1, 65535, "0.0.0.0/0", None)),
    ({"protocol": "6"}, NewRule(5, "tcp", 1, 65535, "0.0.0.0/0", None)),
    ({"protocol": "17", "port_range_min": 53, "port_range_max": 53},
     NewRule(5, "udp", 53, 53, "0.0.0.0/0", None)),
    # icmp: type and code, none being -1.
    ({"protocol": "icmp"}, NewRule(5, "icmp", -1, -1, "0.0.0.0/0", None)),
    ({"protocol": "1", "port_range_min": 8}, NewRule(5, "icmp", 8, -1, "0.0.0.0/0", None)),
    ({"protocol": "icmp", "port_range_min": 3, "port_range_max": 4},
     NewRule(5, "icmp", 3, 4, "0.0.0.0/0", None)),
    # No protocol: every protocol, from a CIDR or a group.
    ({"remote_ip_prefix": "172.16.0.0/12"}, NewRule(5, None, None, None, "172.16.0.0/12", None)),
    ({"protocol": "any"}, NewRule(5, None, None, None, "0.0.0.0/0", None)),
    ({"remote_group_id": "7"}, NewRule(5, None, None, None, None, 7)),
    ({"protocol": "tcp", "remote_group_id": 7}, NewRule(5, "tcp", 1, 65535, None, 7)),
    # Neutron's default ethertype (a null one too); host bits dropped.
    ({"ethertype": None, "protocol": "tcp", "port_range_min": 80, "port_range_max": 80,
      "remote_ip_prefix": "10.0.0.5/24"}, NewRule(5, "tcp", 80, 80, "10.0.0.0/24", None)),
])
def test_neutron_rules_become_nimbus_rules(body: dict, rule: NewRule) -> None:
    assert to_compute_rule({**BASE, **body}) == rule


@pytest.mark.parametrize(("body", "words"), [
    ({"direction": "egress"}, "egress"),
    ({"direction": "in"}, "direction"),
    ({"ethertype": "IPv6"}, "IPv4 only"),
    ({"protocol": "tcp", "remote_ip_prefix": "::/0"}, "IPv6"),
    ({"protocol": "ipv6-icmp"}, "not supported"),
    ({"protocol": "gre"}, "not supported"),
    ({"port_range_min": 1, "port_range_max": 2}, "protocol"),
    ({"protocol": "udp", "port_range_max": 2}, "both"),
    ({"protocol": "tcp", "port_range_min": 0, "port_range_max": 10}, "1-65535"),
    ({"protocol": "icmp", "port_range_max": 2}, "ICMP type"),
    ({"protocol": "icmp", "port_range_min": 256}, "ICMP"),
    ({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "7"}, "Only"),
    ({"remote_address_group_id": "x"}, "address groups"),
    ({"security_group_id": None}, "security_group_id"),
    ({"protocol": "tcp", "description": "ssh"}, "no description"),
])
def test_rules_nimbus_cannot_hold_are_400(body: dict, words: str) -> None:
    with pytest.raises(BadRequest) as caught:
        to_compute_rule({**BASE, **body})
    assert words in caught.value.message


def test_ids_that_are_not_integers_name_no_group() -> None:
    for field in ("security_group_id", "remote_group_id"):
        with pytest.raises(NotFound) as caught:
            to_compute_rule({**BASE, "protocol": "tcp", field: "web"})
        assert caught.value.neutron_type == "SecurityGroupNotFound"  # type: ignore[attr-defined]


def test_rule_view_shows_icmp_any_as_null() -> None:
    row = {"id": 3, "parent_group_id": 5, "ip_protocol": "icmp", "from_port": -1,
           "to_port": 0, "cidr": "0.0.0.0/0", "group_id": None}
    view = rule_view(row, "p1")
    assert (view["id"], view["security_group_id"], view["protocol"], view["port_range_min"],
            view["port_range_max"], view["remote_ip_prefix"], view["remote_group_id"],
            view["project_id"]) == ("3", "5", "icmp", None, 0, "0.0.0.0/0", None, "p1")


def test_filters_and_fields() -> None:
    views = [{"id": "a", "name": "x", "router:external": False, "port_id": None,
              "fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.3"}]},
             {"id": "b", "name": "y", "router:external": True, "port_id": "p",
              "fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.4"}]}]

    def ids(query: str) -> list:
        return filtered(make_mocked_request("GET", f"/v2.0/x?{query}"), views)

    assert [v["id"] for v in ids("router:external=True")] == ["b"]
    assert [v["id"] for v in ids("router:external=false")] == ["a"]
    assert [v["id"] for v in ids("name=x&name=y")] == ["a", "b"]
    assert [v["id"] for v in ids("fixed_ips=ip_address%3D10.0.0.4")] == ["b"]
    assert ids("name=x&fields=id&fields=name") == [{"id": "a", "name": "x"}]
    assert ids("id=b&fields=id,port_id") == [{"id": "b", "port_id": "p"}]
    assert [v["id"] for v in ids("unknown=1")] == ["a", "b"]
    assert ids("name=z") == []
    assert [v["id"] for v in ids("limit=1")] == ["a"]
    assert [v["id"] for v in ids("limit=1&marker=a")] == ["b"]
    assert ids("marker=b") == [] and ids("marker=gone") == []
    assert [v["id"] for v in ids("limit=0")] == ["a", "b"]      # Neutron: 0 is no limit
    with pytest.raises(BadRequest):
        ids("limit=-1")
    request = make_mocked_request("GET", "/v2.0/x/a?fields=name")
    assert only_fields(request, views[0]) == {"name": "x"}
