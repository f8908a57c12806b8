"""Reading the bodies of reboot, rescue and os-getConsoleOutput, JSON- or XML-shaped."""

from __future__ import annotations

import pytest

from services.api.representation import parse_xml
from services.api.resources.console_output import console_length
from services.api.resources.server_power import reboot_type
from services.api.resources.server_rescue import rescue_password
from shared.errors import BadRequest


@pytest.mark.parametrize(("value", "kind"), [
    ({"type": "SOFT"}, "SOFT"),
    ({"type": "HARD"}, "HARD"),
    ({"type": "hard"}, "HARD"),  # Nova upper-cases it
    (parse_xml(b'<reboot type="HARD"/>')["reboot"], "HARD"),
    (parse_xml(b'<reboot xmlns="http://docs.openstack.org/compute/api/v2" type="SOFT"/>')
     ["reboot"], "SOFT"),
])
def test_reboot_type(value, kind):
    assert reboot_type(value) == kind


@pytest.mark.parametrize(("value", "message"), [
    (None, "Missing argument 'type'"),
    ({}, "Missing argument 'type'"),
    ({"type": None}, "Missing argument 'type'"),
    (parse_xml(b"<reboot/>")["reboot"], "Missing argument 'type'"),
    ("HARD", "Missing argument 'type'"),
    ({"type": "MEDIUM"}, "is not HARD or SOFT"),
    ({"type": 1}, "is not HARD or SOFT"),
    ({"type": ""}, "is not HARD or SOFT"),
])
def test_bad_reboot_type(value, message):
    with pytest.raises(BadRequest, match=message):
        reboot_type(value)


@pytest.mark.parametrize(("value", "password"), [
    (None, None),
    ({}, None),
    ({"adminPass": None}, None),
    ({"adminPass": "MySecretPass"}, "MySecretPass"),
    (parse_xml(b'<rescue xmlns="http://docs.openstack.org/compute/api/v2" '
               b'adminPass="MySecretPass"/>')["rescue"], "MySecretPass"),
    (parse_xml(b"<rescue/>")["rescue"], None),
])
def test_rescue_password(value, password):
    assert rescue_password(value) == password


@pytest.mark.parametrize("value", [{"adminPass": ""}, {"adminPass": 12}, "pass", [1]])
def test_bad_rescue_body(value):
    with pytest.raises(BadRequest):
        rescue_password(value)


@pytest.mark.parametrize(("value", "length"), [
    (None, None),
    ({}, None),
    ({"length": None}, None),
    ({"length": 50}, 50),
    ({"length": 0}, 0),
    ({"length": "7"}, 7),
    ({"length": -1}, None),  # Nova's "unlimited"
    ({"length": "-1"}, None),
    (parse_xml(b"<os-getConsoleOutput><length>\n  50\n</length></os-getConsoleOutput>")
     ["os-getConsoleOutput"], 50),
    (parse_xml(b"<os-getConsoleOutput/>")["os-getConsoleOutput"], None),
])
def test_console_length(value, length):
    assert console_length(value) == length


@pytest.mark.parametrize("value", [{"length": -2}, {"length": "-3"}, {"length": 2.5},
                                   {"length": "ten"}, {"length": True}, {"length": [5]},
                                   {"length": ""}, "50"])
def test_bad_console_length(value):
    with pytest.raises(BadRequest):
        console_length(value)


@pytest.mark.parametrize("value", [10**30, str(10**30), " 99999999999999999999 "])
def test_huge_console_length_reads_as_the_largest(value):
    from services.api.resources.console_output import MAX_LENGTH

    assert console_length({"length": value}) == MAX_LENGTH


def test_console_length_longer_than_int_converts_is_400():
    with pytest.raises(BadRequest, match="integer"):
        console_length({"length": "9" * 5000})
