"""The rate limiter's leaky buckets, rules and views, on a fake clock."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from services.api.ratelimit import (
    DEFAULT_RULES,
    RateLimiter,
    Rule,
    RulesCache,
    effective_rules,
    rate_view,
    request_target,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


WALL0 = 1_700_000_000.0


def limiter() -> tuple[RateLimiter, Clock]:
    clock = Clock()
    return RateLimiter(clock=clock, wall=lambda: WALL0 + clock.now - 1000.0), clock


POST3 = Rule("POST", "*", ".*", 3, "MINUTE")


def test_burst_of_value_then_refused_until_one_request_drains() -> None:
    rl, clock = limiter()
    for _ in range(3):
        assert rl.check("p", [POST3], "POST", "/servers") is None
    denial = rl.check("p", [POST3], "POST", "/servers")
    assert denial is not None and denial.rule == POST3
    assert denial.retry_after == pytest.approx(20.0)      # 60 s / 3 requests
    clock.now += 19.9
    assert rl.check("p", [POST3], "POST", "/servers") is not None
    assert rl.check("p", [POST3], "POST", "/servers").retry_after == pytest.approx(0.1)
    clock.now += 0.1
    assert rl.check("p", [POST3], "POST", "/servers") is None
    assert rl.check("p", [POST3], "POST", "/servers") is not None


def test_refused_requests_are_not_counted() -> None:
    rl, clock = limiter()
    for _ in range(3):
        assert rl.check("p", [POST3], "POST", "/x") is None
    for _ in range(50):  # hammering while refused does not push the wait further
        assert rl.check("p", [POST3], "POST", "/x").retry_after == pytest.approx(20.0)
    clock.now += 20
    assert rl.check("p", [POST3], "POST", "/x") is None


def test_bucket_drains_completely_in_one_unit() -> None:
    rl, clock = limiter()
    for _ in range(3):
        rl.check("p", [POST3], "POST", "/x")
    clock.now += 60
    for _ in range(3):
        assert rl.check("p", [POST3], "POST", "/x") is None
    assert rl.check("p", [POST3], "POST", "/x") is not None


def test_projects_have_their_own_allowance() -> None:
    rl, _ = limiter()
    for _ in range(3):
        rl.check("a", [POST3], "POST", "/x")
    assert rl.check("a", [POST3], "POST", "/x") is not None
    assert rl.check("b", [POST3], "POST", "/x") is None


def test_only_matching_verb_and_regex_count() -> None:
    rl, _ = limiter()
    changes = Rule("GET", "*changes-since*", ".*changes-since.*", 1, "MINUTE")
    rules = [POST3, changes]
    for _ in range(10):
        assert rl.check("p", rules, "GET", "/servers/detail") is None
        assert rl.check("p", rules, "PUT", "/servers/x") is None
    assert rl.check("p", rules, "GET", "/servers/detail?changes-since=2014-01-01") is None
    assert rl.check("p", rules, "GET", "/servers?changes-since=2014-01-01").rule == changes


def test_every_matching_rule_applies_and_a_refusal_charges_none() -> None:
    rl, _ = limiter()
    creates = Rule("POST", "*/servers", "^/servers$", 1, "MINUTE")
    rules = [POST3, creates]
    assert rl.check("p", rules, "POST", "/servers") is None
    denial = rl.check("p", rules, "POST", "/servers")
    assert denial.rule == creates and denial.retry_after == pytest.approx(60.0)
    # The refused create charged nothing to POST *: two POSTs are left.
    by_rule = {s.rule: s for s in rl.status("p", rules)}
    assert by_rule[POST3].remaining == 2 and by_rule[creates].remaining == 0
    assert rl.check("p", rules, "POST", "/os-keypairs") is None
    assert rl.check("p", rules, "POST", "/os-keypairs") is None
    assert rl.check("p", rules, "POST", "/os-keypairs").rule == POST3


def test_the_longest_wait_is_reported() -> None:
    rl, _ = limiter()
    slow = Rule("POST", "*/servers", "^/servers", 1, "HOUR")
    fast = Rule("POST", "*", ".*", 1, "SECOND")
    assert rl.check("p", [fast, slow], "POST", "/servers") is None
    denial = rl.check("p", [fast, slow], "POST", "/servers")
    assert denial.rule == slow and denial.retry_after == pytest.approx(3600.0)


def test_status_remaining_and_next_available() -> None:
    rl, clock = limiter()
    (fresh,) = rl.status("p", [POST3])
    assert fresh.remaining == 3 and fresh.next_available == pytest.approx(WALL0)
    for _ in range(3):
        rl.check("p", [POST3], "POST", "/x")
    (spent,) = rl.status("p", [POST3])
    assert spent.remaining == 0 and spent.next_available == pytest.approx(WALL0 + 20)
    clock.now += 25  # one request drained, 5 s into the next
    (later,) = rl.status("p", [POST3])
    assert later.remaining == 1 and later.next_available == pytest.approx(WALL0 + 25)
    clock.now += 100
    assert rl.status("p", [POST3])[0].remaining == 3
    assert rl.status("p", [POST3])[0].remaining == 3  # status never charges


def test_drained_buckets_are_forgotten_when_there_are_too_many() -> None:
    rl, clock = limiter()
    rl.MAX_BUCKETS = 10
    for i in range(10):
        rl.check(f"p{i}", [POST3], "POST", "/x")
    clock.now += 10  # p0..p9 partly drained: kept
    rl.check("busy", [POST3], "POST", "/x")
    assert len(rl._buckets) == 11
    clock.now += 15  # p0..p9 drained, busy not
    rl.check("busy2", [POST3], "POST", "/x")
    assert {p for p, _ in rl._buckets} == {"busy", "busy2"}
    assert rl.status("busy", [POST3])[0].remaining == 2


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
    rl, _ = limiter()
    put = Rule("PUT", "*", ".*", 10, "MINUTE")
    rl.check("p", [POST3], "POST", "/x")
    view = rate_view(rl.status("p", [POST3, put, DEFAULT_RULES[1]]))
    assert view == [
        {"uri": "*", "regex": ".*", "limit": [
            {"verb": "POST", "value": 3, "remaining": 2, "unit": "MINUTE",
             "next-available": "2023-11-14T22:13:20Z"},
            {"verb": "PUT", "value": 10, "remaining": 10, "unit": "MINUTE",
             "next-available": "2023-11-14T22:13:20Z"}]},
        {"uri": "*/servers", "regex": DEFAULT_RULES[1].regex, "limit": [
            {"verb": "POST", "value": 1000, "remaining": 1000, "unit": "DAY",
             "next-available": "2023-11-14T22:13:20Z"}]},
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
