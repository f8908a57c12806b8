"""Paging and polling parameters (sections 3.6, 3.7), the next link, the status filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from services.api.keys import SETTINGS
from services.api.resources.pagination import (
    MAX_LIMIT,
    Page,
    next_links,
    page_params,
    parse_changes_since,
    parse_limit,
    parse_marker,
)
from services.api.resources.servers import states_for_status
from shared.errors import BadRequest


@pytest.mark.parametrize(("raw", "want"), [
    (None, MAX_LIMIT), ("1", 1), ("2", 2), (" 7 ", 7), ("1000", 1000), ("1001", 1000),
    ("99999999999999999999999", 1000), ("007", 7),
    ("9" * 4300, 1000), ("0" * 5000 + "5", 5),  # leading zeros are not digits of the number
    # An empty page, as in Nova (int() reads "-0" as 0 too).
    ("0", 0), (" 0 ", 0), ("-0", 0), ("0" * 5000, 0),
])
def test_limit(raw, want):
    assert parse_limit(raw) == want


@pytest.mark.parametrize("raw", ["abc", "", "1.5", "+3", "1_0", "0x10", "2 3", "- 1", "--1",
                                 "\u0663", "-" + "9" * 5000,
                                 "9" * 4301])  # past the 4,300 digits int() converts, as Nova
def test_bad_limit_is_400(raw):
    with pytest.raises(BadRequest, match="^limit param must be an integer"):
        parse_limit(raw)


@pytest.mark.parametrize("raw", ["-1", " -7 ", "-1001", "-" + "9" * 4300])
def test_negative_limit_is_400_must_be_positive(raw):
    with pytest.raises(BadRequest, match="^limit param must be positive$"):
        parse_limit(raw)


def test_marker_empty_is_none():
    assert parse_marker(None) is None
    assert parse_marker("") is None
    assert parse_marker(" abc ") == "abc"


@pytest.mark.parametrize(("raw", "want"), [
    ("2011-01-24T17:08:00", datetime(2011, 1, 24, 17, 8, tzinfo=UTC)),
    ("2011-01-24T17:08:00Z", datetime(2011, 1, 24, 17, 8, tzinfo=UTC)),
    # The spec's own form: Z followed by the offset.
    ("2011-01-24T17:08:00Z+01:00", datetime(2011, 1, 24, 16, 8, tzinfo=UTC)),
    ("2011-01-24T17:08:00+01:00", datetime(2011, 1, 24, 16, 8, tzinfo=UTC)),
    ("2011-01-24T17:08:00-05:30", datetime(2011, 1, 24, 22, 38, tzinfo=UTC)),
    # An unescaped "+" in a query string arrives as a space.
    ("2011-01-24T17:08:00 01:00", datetime(2011, 1, 24, 16, 8, tzinfo=UTC)),
    ("2011-01-24T17:08:00.250Z", datetime(2011, 1, 24, 17, 8, 0, 250000, tzinfo=UTC)),
    ("2011-01-24", datetime(2011, 1, 24, tzinfo=UTC)),
])
def test_changes_since(raw, want):
    got = parse_changes_since(raw)
    assert got == want
    assert got.tzinfo is not None


@pytest.mark.parametrize("raw", ["", "yesterday", "2011-13-01T00:00:00", "2011-01-24T25:00:00",
                                 "2011-01-24T17:08:00+25:00", "17:08:00", "1295888880"])
def test_bad_changes_since_is_400(raw):
    with pytest.raises(BadRequest):
        parse_changes_since(raw)


def test_changes_since_absent():
    assert parse_changes_since(None) is None


def _request(path_qs: str, public_url: str = "http://api.example:8774") -> web.Request:
    app = {SETTINGS: SimpleNamespace(api=SimpleNamespace(public_url=public_url))}
    request = make_mocked_request("GET", path_qs, app=app)
    request["principal"] = SimpleNamespace(project_id="p1")
    return request


def test_page_params():
    page = page_params(_request("/v2/p1/servers?limit=2&marker=abc&changes-since=2011-01-24"))
    assert page == Page(limit=2, marker="abc", changes_since=datetime(2011, 1, 24, tzinfo=UTC))
    assert page_params(_request("/v2/p1/flavors?changes-since=x"), polling=False).changes_since is None
    with pytest.raises(BadRequest):
        page_params(_request("/v2/p1/servers?changes-since=x"))


def test_next_link_when_page_full_keeps_the_query():
    request = _request("/v2/p1/servers/detail?name=web&limit=2&marker=old&changes-since=2011-01-24T17:08:00Z")
    items = [{"id": "a"}, {"id": "b"}]
    links = next_links(request, "servers/detail", "servers", items, page_params(request))
    ((link,),) = links.values()
    assert list(links) == ["servers_links"] and link["rel"] == "next"
    url = urlsplit(link["href"])
    assert (url.scheme, url.netloc, url.path) == ("http", "api.example:8774", "/v2/p1/servers/detail")
    assert parse_qsl(url.query) == [("name", "web"), ("limit", "2"),
                                    ("changes-since", "2011-01-24T17:08:00Z"), ("marker", "b")]


def test_no_next_link_on_a_short_page():
    request = _request("/v2/p1/servers?limit=3")
    assert next_links(request, "servers", "servers", [{"id": "a"}, {"id": "b"}],
                      page_params(request)) == {}
    assert next_links(request, "servers", "servers", [], page_params(request)) == {}


def test_no_next_link_on_an_empty_page_of_limit_0():
    # A page of 0 items is "full" at limit=0: still no link, as in Nova.
    request = _request("/v2/p1/servers?limit=0")
    assert next_links(request, "servers", "servers", [], page_params(request)) == {}


def test_next_link_without_limit_uses_the_maximum():
    request = _request("/v2/p1/images")
    items = [{"id": str(i)} for i in range(MAX_LIMIT)]
    (link,) = next_links(request, "images", "images", items, page_params(request))["images_links"]
    assert link["href"] == "http://api.example:8774/v2/p1/images?marker=999"


@pytest.mark.parametrize(("status", "some", "none_of"), [
    ("ACTIVE", {"active/"}, {"building/", "stopped/"}),
    ("active", {"active/"}, {"building/"}),
    ("BUILD", {"building/", "building/scheduling", "building/spawning"}, {"active/"}),
    ("BUILD(spawning)", {"building/spawning"}, {"building/scheduling", "building/"}),
    ("SHUTOFF", {"stopped/"}, {"active/"}),
    ("ERROR", {"error/"}, {"active/"}),
    ("DELETED", {"deleted/"}, {"active/"}),
])
def test_status_filter_states(status, some, none_of):
    states = set(states_for_status(status))
    assert some <= states
    assert not none_of & states


def test_unknown_status_matches_nothing():
    assert states_for_status("FROBNICATED") == []
    assert states_for_status("") == []


def test_changes_since_keeps_offsets_apart():
    east = parse_changes_since("2011-01-24T17:08:00+09:00")
    assert east.astimezone(timezone(timedelta(0))).hour == 8
