"""The rate limiter's rules and views (its buckets, in PostgreSQL, are
tests/integration/test_rate_limits.py's)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from services.api.ratelimit import (
    DEFAULT_RULES,
    Rule,
    RulesCache,
    RuleStatus,
    effective_rules,
    rate_view,
    request_target,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


POST3 = Rule("POST", "*", ".*", 3, "MINUTE")


def test_project_rules_replace_defaults_by_verb_and_uri() -> None:
    own = [Rule("POST", "*", ".*", 3, "MINUTE"), Rule("GET", "*", ".*", 100, "SECOND")]
    rules = effective_rules(own)
    assert rules[0] == own[0]
    assert rules[-1] == own[1]
    assert rules[1:-1] == DEFAULT_RULES[1:]
    assert effective_rules([]) == DEFAULT_RULES


def test_default_create_rule_counts_creates_not_actions() -> None:
    creates = next(r for r in DEFAULT_RULES if r.uri == "*/servers")
    assert creates.matches("POST", "/servers")
    assert creates.matches("POST", "/servers.xml")
    assert not creates.matches("POST", "/servers/abc/action")
    assert not creates.matches("POST", "/servers/abc/metadata")
    assert not creates.matches("GET", "/servers")


@pytest.mark.parametrize("args, message", [
    (("PATCH", "*", ".*", 1, "MINUTE"), "verb"),
    (("POST", "*", ".*", 0, "MINUTE"), "positive"),
    (("POST", "*", ".*", 1, "WEEK"), "unit"),
    (("POST", "*", "(", 1, "MINUTE"), "compile"),
    (("POST", "", ".*", 1, "MINUTE"), "1 to 255"),
])
def test_invalid_rules_are_refused(args, message) -> None:
    with pytest.raises(ValueError, match=message):
        Rule(*args)


def test_rate_view_groups_rules_by_uri_and_regex_like_nova() -> None:
    put = Rule("PUT", "*", ".*", 10, "MINUTE")
    wall = 1_700_000_000.0
    view = rate_view([RuleStatus(POST3, 2, wall), RuleStatus(put, 10, wall),
                      RuleStatus(DEFAULT_RULES[1], 1000, wall + 20)])
    assert view == [
        {"uri": "*", "regex": ".*", "limit": [
            {"verb": "POST", "value": 3, "remaining": 2, "unit": "MINUTE",
             "next-available": "2023-11-14T22:13:20Z"},
            {"verb": "PUT", "value": 10, "remaining": 10, "unit": "MINUTE",
             "next-available": "2023-11-14T22:13:20Z"}]},
        {"uri": "*/servers", "regex": DEFAULT_RULES[1].regex, "limit": [
            {"verb": "POST", "value": 1000, "remaining": 1000, "unit": "DAY",
             "next-available": "2023-11-14T22:13:40Z"}]},
    ]


@pytest.mark.parametrize("path, target", [
    ("/v2/p1/servers", "/servers"),
    ("/v2/p1/servers/detail.xml?changes-since=2014-01-01T00:00:00Z",
     "/servers/detail.xml?changes-since=2014-01-01T00:00:00Z"),
    ("/v2/p1", ""),
    ("/v2/p1/", "/"),
    ("/v2", None),
    ("/", None),
    ("/healthz", None),
])
def test_request_target_is_the_path_after_the_project(path, target) -> None:
    assert request_target(make_mocked_request("GET", path)) == target


async def test_rules_cache_reads_again_after_its_ttl(monkeypatch) -> None:
    clock = Clock()
    loads: list[str] = []
    own: list[Rule] = []

    async def load(conn, project_id):
        loads.append(project_id)
        return list(own)

    monkeypatch.setattr("services.api.ratelimit.load_overrides", load)
    cache = RulesCache(ttl=10, clock=clock)
    assert await cache.get(None, "p") == DEFAULT_RULES
    own.append(POST3)
    assert await cache.get(None, "p") == DEFAULT_RULES  # cached
    clock.now += 10.01
    assert (await cache.get(None, "p"))[0] == POST3
    assert loads == ["p", "p"]
