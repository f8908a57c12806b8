"""Rate limits per project by HTTP verb and URL (section 3.8.2), as Nova's legacy
``RateLimitingMiddleware`` had them.

A rule is (verb, uri label, regex, value, unit): at most ``value`` requests of
``verb`` whose path after ``/v2/{project_id}`` (plus ``?query`` when there is
one) matches ``regex`` (anchored at the start) per ``unit``. Every rule that
matches a request applies; the request is refused if any of them is spent, and
then charges none of them.

Each rule is a leaky bucket, as in Nova: it holds ``value`` requests, a request
fills ``1/value`` of it and it drains completely in one ``unit``. So a client
may burst ``value`` requests, then gets one more each ``unit/value`` seconds;
``Retry-After`` says when the next one fits.

Defaults (``DEFAULT_RULES``) are Nova's legacy rules, loosened so that a normal
client, and the end-to-end suite that posts many times a minute in one
project, never meets them; they still stop a runaway script:

    POST    *                  .*                                  300 / MINUTE
    POST    */servers          ^/servers (creates, not actions)   1000 / DAY
    PUT     *                  .*                                  300 / MINUTE
    GET     *changes-since*    .*changes-since.*                   300 / MINUTE
    DELETE  *                  .*                                  600 / MINUTE

(Nova's were POST 10, PUT 10, DELETE 100 per minute, changes-since 3 per
minute and 50 creates a day: tight enough to fail ordinary scripts.)

A project's own rules (``project_rate_limits``, set by ``manage
set-rate-limit``) replace the default rule with the same verb and uri label
and add to the rest. The API reads them at most every ``RULES_TTL_S`` seconds,
so a change takes that long to apply.

Counters are shared by every API process: one bucket row per (project, verb,
uri) in PostgreSQL (migration 0014, whose functions hold the arithmetic), so
replicas behind a balancer give a project its allowance once, not once each.
Cost: a rate-limited request runs one statement (``rate_limit_charge``: lock
the project's matching bucket rows in key order, read them, update them; one
round trip, one index lookup and one row update per matching rule, usually
one or two). Two requests of one project wait on each other's row lock for
that statement only; the first request of a (project, rule) also inserts its
row. Times come from the database's clock, the one clock every replica shares.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import structlog
from aiohttp import web

from services.api.keys import POOL
from services.api.queries import quotas as q
from shared.errors import OverLimit

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

UNIT_SECONDS: dict[str, int] = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
VERBS = ("GET", "POST", "PUT", "DELETE")

RULES_TTL_S = 10.0
"""How long a project's rules are cached before they are read again."""



@dataclass(frozen=True)
class Rule:
    """One rate limit. Raises ValueError when a field is not valid."""

    verb: str
    uri: str
    regex: str
    value: int
    unit: str
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.verb not in VERBS:
            raise ValueError(f"verb must be one of {', '.join(VERBS)}, not {self.verb!r}")
        if self.unit not in UNIT_SECONDS:
            raise ValueError(f"unit must be one of {', '.join(UNIT_SECONDS)}, not {self.unit!r}")
        if isinstance(self.value, bool) or not isinstance(self.value, int) or self.value < 1:
            raise ValueError(f"value must be a positive integer, not {self.value!r}")
        if not self.uri or len(self.uri) > 255 or not self.regex or len(self.regex) > 255:
            raise ValueError("uri and regex must be 1 to 255 characters")
        try:
            pattern = re.compile(self.regex)
        except re.error as exc:
            raise ValueError(f"regex {self.regex!r} does not compile: {exc}") from None
        object.__setattr__(self, "pattern", pattern)

    @property
    def seconds(self) -> int:
        return UNIT_SECONDS[self.unit]

    def matches(self, verb: str, target: str) -> bool:
        return verb == self.verb and self.pattern.match(target) is not None

    def describe(self) -> str:
        """Nova's explanation: "Only 10 POST request(s) can be made to * every minute."."""
        return (f"Only {self.value} {self.verb} request(s) can be made to {self.uri} "
                f"every {self.unit.lower()}.")


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("POST", "*", ".*", 300, "MINUTE"),
    # Creates only: Nova's "^/servers" also caught every server action.
    Rule("POST", "*/servers", r"^/servers(?:\.json|\.xml)?(?:\?.*)?$", 1000, "DAY"),
    Rule("PUT", "*", ".*", 300, "MINUTE"),
    Rule("GET", "*changes-since*", ".*changes-since.*", 300, "MINUTE"),
    Rule("DELETE", "*", ".*", 600, "MINUTE"),
)


def effective_rules(overrides: Iterable[Rule], defaults: Sequence[Rule] = DEFAULT_RULES
                    ) -> tuple[Rule, ...]:
    """The defaults with a project's own rules put in place by (verb, uri)."""
    own = {(r.verb, r.uri): r for r in overrides}
    merged = [own.pop((d.verb, d.uri), d) for d in defaults]
    return (*merged, *own.values())


@dataclass(frozen=True)
class RuleStatus:
    rule: Rule
    remaining: int
    next_available: float
    """Wall-clock time (epoch seconds) at which the next request fits."""


@dataclass(frozen=True)
class Denial:
    rule: Rule
    retry_after: float
    """Seconds until the request would fit."""


def _columns(rules: Iterable[Rule]) -> list[tuple[str, str, int, int]]:
    return [(r.verb, r.uri, r.seconds, r.value) for r in rules]


async def charge(conn: asyncpg.Pool | asyncpg.Connection, project: str, rules: Iterable[Rule],
                 verb: str, target: str, now: datetime | None = None) -> Denial | None:
    """Charge the request to every matching rule, or to none and say why not (the
    longest wait). No statement runs when no rule matches. ``now`` is for tests."""
    matching = {(r.verb, r.uri): r for r in rules if r.matches(verb, target)}
    if not matching:
        return None
    spent = await q.rate_charge(conn, project, _columns(matching.values()), now)
    if not spent:
        return None
    worst = max(spent, key=lambda row: row["retry_after"])
    return Denial(matching[(worst["verb"], worst["uri"])], worst["retry_after"])


async def status(conn: asyncpg.Pool | asyncpg.Connection, project: str, rules: Sequence[Rule],
                 now: datetime | None = None) -> list[RuleStatus]:
    """Each rule's remaining requests and when the next one fits (nothing charged)."""
    rows = await q.rate_status(conn, project, _columns(rules), now)
    return [RuleStatus(rule, row["remaining"], row["next_available"].timestamp())
            for rule, row in zip(rules, rows, strict=True)]


def rate_view(statuses: Iterable[RuleStatus]) -> list[dict[str, object]]:
    """The ``rate`` list of /limits, Nova's shape: rules grouped by (uri, regex)."""
    groups: dict[tuple[str, str], list[dict[str, object]]] = {}
    for s in statuses:
        groups.setdefault((s.rule.uri, s.rule.regex), []).append({
            "verb": s.rule.verb,
            "value": s.rule.value,
            "remaining": s.remaining,
            "unit": s.rule.unit,
            "next-available": datetime.fromtimestamp(s.next_available, UTC)
                                      .strftime("%Y-%m-%dT%H:%M:%SZ"),
        })
    return [{"uri": uri, "regex": regex, "limit": limits}
            for (uri, regex), limits in groups.items()]


class RulesCache:
    """Each project's effective rules, read from the database at most every ``ttl`` s."""

    def __init__(self, ttl: float = RULES_TTL_S, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._rules: dict[str, tuple[float, tuple[Rule, ...]]] = {}

    async def get(self, pool: asyncpg.Pool | asyncpg.Connection, project_id: str
                  ) -> tuple[Rule, ...]:
        now = self._clock()
        cached = self._rules.get(project_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        rules = effective_rules(await load_overrides(pool, project_id))
        if len(self._rules) > 10_000:
            self._rules = {p: v for p, v in self._rules.items() if v[0] > now}
        self._rules[project_id] = (now + self._ttl, rules)
        return rules


async def load_overrides(conn: asyncpg.Pool | asyncpg.Connection, project_id: str) -> list[Rule]:
    """The project's own rules; a row that no longer makes a valid rule is skipped."""
    rules = []
    for row in await q.rate_limits(conn, project_id):
        try:
            rules.append(Rule(row["verb"], row["uri"], row["regex"], row["value"], row["unit"]))
        except ValueError as exc:
            log.warning("api.rate_limit_rule_invalid", project_id=project_id, error=str(exc))
    return rules


@dataclass
class RateLimits:
    """What the compute app holds: the cached rules (the counters are in PostgreSQL)."""

    rules: RulesCache = field(default_factory=RulesCache)


RATE_LIMITS = web.AppKey("rate_limits", RateLimits)


def request_target(request: web.Request) -> str | None:
    """What the rules' regexes see: the path after ``/v2/{project_id}`` and the query."""
    parts = request.path.split("/", 3)
    if len(parts) < 3 or parts[1] != "v2" or not parts[2]:
        return None
    rest = "/" + parts[3] if len(parts) > 3 else ""
    query = request.query_string
    return f"{rest}?{query}" if query else rest


@web.middleware
async def ratelimit_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a request of a project over one of its rate limits with 413 overLimit.

    Sits after ``auth_mw``: it needs the caller's project, and requests without
    one (version discovery, the health check) are not limited.
    """
    principal = request.get("principal")
    target = request_target(request)
    if principal is None or principal.project_id is None or target is None:
        return await handler(request)
    limits = request.app[RATE_LIMITS]
    pool = request.app[POOL]
    rules = await limits.rules.get(pool, principal.project_id)
    denial = await charge(pool, principal.project_id, rules, request.method, target)
    if denial is not None:
        retry_after = max(1, math.ceil(denial.retry_after))
        log.info("api.rate_limited", verb=denial.rule.verb, uri=denial.rule.uri,
                 retry_after=retry_after)
        raise OverLimit("This request was rate-limited.", details=denial.rule.describe(),
                        retry_after=retry_after)
    return await handler(request)


async def project_status(request: web.Request, project_id: str) -> list[RuleStatus]:
    """The project's rules as every API process counts them (for /limits)."""
    pool = request.app[POOL]
    rules = await request.app[RATE_LIMITS].rules.get(pool, project_id)
    return await status(pool, project_id, rules)
