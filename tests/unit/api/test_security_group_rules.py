"""The body of create security group rule (section 4.4.11.9), checked as Nova did."""

from __future__ import annotations

import pytest

from services.api.resources.security_group_rules import NewRule, new_rule
from shared.errors import BadRequest


@pytest.mark.parametrize(("body", "rule"), [
    # The spec's example: strings as JSON and XML give them.
    ({"cidr": "0.0.0.0/0", "from_port": "80", "ip_protocol": "tcp", "parent_group_id": "17965",
      "to_port": "8080"}, NewRule(17965, "tcp", 80, 8080, "0.0.0.0/0", None)),
    ({"parent_group_id": 5, "ip_protocol": "UDP", "from_port": 53, "to_port": 53,
      "cidr": "10.1.0.0/16"}, NewRule(5, "udp", 53, 53, "10.1.0.0/16", None)),
    ({"parent_group_id": 5, "ip_protocol": "icmp", "from_port": -1, "to_port": -1,
      "cidr": "0.0.0.0/0"}, NewRule(5, "icmp", -1, -1, "0.0.0.0/0", None)),
    ({"parent_group_id": 5, "ip_protocol": "icmp", "from_port": 8, "to_port": 0,
      "cidr": "::/0"}, NewRule(5, "icmp", 8, 0, "::/0", None)),
    # No source: anywhere (Nova; Tempest relies on it). openstackclient sends the
    # absent one as null.
    ({"parent_group_id": 5, "ip_protocol": "tcp", "from_port": 1, "to_port": 65535},
     NewRule(5, "tcp", 1, 65535, "0.0.0.0/0", None)),
    ({"parent_group_id": 5, "ip_protocol": "tcp", "from_port": 22, "to_port": 22,
      "cidr": "192.168.1.0/24", "group_id": None},
     NewRule(5, "tcp", 22, 22, "192.168.1.0/24", None)),
    # Host bits are dropped.
    ({"parent_group_id": 5, "ip_protocol": "tcp", "from_port": 22, "to_port": 22,
      "cidr": "10.0.0.5/24"}, NewRule(5, "tcp", 22, 22, "10.0.0.0/24", None)),
    ({"parent_group_id": 5, "ip_protocol": "tcp", "from_port": 22, "to_port": 22,
      "cidr": "10.0.0.5/32"}, NewRule(5, "tcp", 22, 22, "10.0.0.5/32", None)),
    # Group sources: ports may be left out (all of them), or protocol and ports.
    ({"parent_group_id": 5, "group_id": "6", "ip_protocol": "tcp", "cidr": None},
     NewRule(5, "tcp", 1, 65535, None, 6)),
    ({"parent_group_id": 5, "group_id": 6, "ip_protocol": "icmp"},
     NewRule(5, "icmp", -1, -1, None, 6)),
    ({"parent_group_id": 5, "group_id": 6}, NewRule(5, None, None, None, None, 6)),
    ({"parent_group_id": 5, "group_id": 6, "ip_protocol": "udp", "from_port": "1000",
      "to_port": "2000"}, NewRule(5, "udp", 1000, 2000, None, 6)),
], ids=["spec", "udp", "icmp-any", "icmp-type-code", "no-source", "null-group",
        "host-bits", "host-32", "group-tcp-all", "group-icmp-all", "group-any-protocol",
        "group-udp-range"])
def test_valid_rules(body: dict, rule: NewRule) -> None:
    assert new_rule(body) == rule


_TCP = {"parent_group_id": 5, "ip_protocol": "tcp", "from_port": 22, "to_port": 22,
        "cidr": "0.0.0.0/0"}


@pytest.mark.parametrize(("body", "message"), [
    ({k: v for k, v in _TCP.items() if k != "parent_group_id"}, "Security group id should be integer"),
    (_TCP | {"parent_group_id": "abc"}, "Security group id should be integer"),
    (_TCP | {"parent_group_id": True}, "Security group id should be integer"),
    (_TCP | {"group_id": "x", "cidr": None}, "Security group id should be integer"),
    (_TCP | {"group_id": 6}, "Give exactly one of cidr and group_id."),
    (_TCP | {"ip_protocol": "gre"}, "Invalid IP protocol gre."),
    (_TCP | {"ip_protocol": 6}, "Invalid IP protocol 6."),
    (_TCP | {"from_port": "ssh"}, "To and From ports must be integers"),
    (_TCP | {"ip_protocol": "icmp", "to_port": "echo"},
     "Type and Code must be integers for ICMP protocol type"),
    (_TCP | {"from_port": 100, "to_port": 99},
     "Invalid port range 100:99. Former value cannot be greater than the later"),
    (_TCP | {"from_port": 0, "to_port": 10},
     "Invalid port range 0:10. Valid TCP ports should be between 1-65535"),
    (_TCP | {"ip_protocol": "udp", "from_port": 1, "to_port": 65536},
     "Invalid port range 1:65536. Valid TCP ports should be between 1-65535"),
    (_TCP | {"ip_protocol": "tcp", "from_port": -1, "to_port": -1},
     "Invalid port range -1:-1. Valid TCP ports should be between 1-65535"),
    (_TCP | {"ip_protocol": "icmp", "from_port": 256, "to_port": 0},
     "Invalid port range 256:0. For ICMP, the type:code must be valid"),
    (_TCP | {"ip_protocol": "icmp", "from_port": 0, "to_port": -2},
     "Invalid port range 0:-2. For ICMP, the type:code must be valid"),
    ({k: v for k, v in _TCP.items() if k != "ip_protocol"},
     "Not enough parameters to build a valid rule."),
    ({k: v for k, v in _TCP.items() if k != "to_port"},
     "Not enough parameters to build a valid rule."),
    ({"parent_group_id": 5, "cidr": "0.0.0.0/0"}, "Not enough parameters to build a valid rule."),
    ({"parent_group_id": 5, "group_id": 6, "from_port": 1, "to_port": 2},
     "Not enough parameters to build a valid rule."),
    ({"parent_group_id": 5, "group_id": 6, "ip_protocol": "tcp", "from_port": 1},
     "Not enough parameters to build a valid rule."),
    (_TCP | {"cidr": "10.0.0.0/33"}, "Invalid cidr 10.0.0.0/33."),
    (_TCP | {"cidr": "300.0.0.0/8"}, "Invalid cidr 300.0.0.0/8."),
    (_TCP | {"cidr": "10.0.0.1"},
     "Invalid cidr 10.0.0.1: give an address and a prefix length (10.0.0.0/24)."),
    (_TCP | {"cidr": "10.0.0.0/0"}, "Bad prefix for network in cidr 10.0.0.0/0"),
    (_TCP | {"cidr": 10}, "Invalid cidr 10."),
])
def test_invalid_rules(body: dict, message: str) -> None:
    with pytest.raises(BadRequest) as err:
        new_rule(body)
    assert err.value.message == message
