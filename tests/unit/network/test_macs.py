"""Random MAC addresses under the configured prefix."""

import re

import pytest

from services.network.macs import parse_prefix, random_mac

MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def test_mac_has_the_prefix_and_six_lowercase_octets() -> None:
    for _ in range(200):
        mac = random_mac("fa:16:3e")
        assert MAC.match(mac), mac
        assert mac.startswith("fa:16:3e:")


def test_macs_are_random() -> None:
    assert len({random_mac("fa:16:3e") for _ in range(1000)}) > 990


def test_prefix_is_normalised() -> None:
    assert random_mac(" FA:16 ").startswith("fa:16:")


def test_empty_prefix_gives_a_locally_administered_unicast_mac() -> None:
    for _ in range(200):
        first = int(random_mac("")[:2], 16)
        assert first & 0x01 == 0 and first & 0x02 == 0x02


@pytest.mark.parametrize("bad", ["fa:16:3e:00:00:00", "fa-16-3e", "fa:1", "zz", "fa::3e", "01:00:5e"])
def test_bad_prefixes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_prefix(bad)
