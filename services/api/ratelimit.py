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

Counters live in memory in each API process, keyed by project: with several
API processes behind a balancer each has its own allowance, so a project may
make up to (processes x value) requests per unit. A restart forgets them.
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

_EPSILON = 1e-9


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


@dataclass
class _Bucket:
    level: float = 0.0
    """Seconds of the unit filled; each request adds ``unit/value``."""
    last: float = 0.0


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


class RateLimiter:
    """Leaky buckets per (project, rule), in this process's memory.

    ``clock`` drives the buckets (monotonic); ``wall`` only dates
    ``next-available`` for display. Both are injectable for tests.
    """

    MAX_BUCKETS = 100_000
    """Past this many, buckets that have drained are forgotten."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._wall = wall
        self._buckets: dict[tuple[str, Rule], _Bucket] = {}

    def _level(self, key: tuple[str, Rule], now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        return max(0.0, bucket.level - (now - bucket.last))

    def check(self, project: str, rules: Iterable[Rule], verb: str, target: str) -> Denial | None:
        """Charge the request to every matching rule, or to none and say why not."""
        now = self._clock()
        matching = [r for r in rules if r.matches(verb, target)]
        if not matching:
            return None
        worst: Denial | None = None
        levels = []
        for rule in matching:
            key = (project, rule)
            level = self._level(key, now)
            cost = rule.seconds / rule.value
            over = level + cost - rule.seconds
            if over > _EPSILON and (worst is None or over > worst.retry_after):
                worst = Denial(rule, over)
            levels.append((key, level + cost))
        if worst is not None:
            return worst
        for key, level in levels:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket()
            bucket.level, bucket.last = level, now
        if len(self._buckets) > self.MAX_BUCKETS:
            self._forget_drained(now)
        return None

    def status(self, project: str, rules: Iterable[Rule]) -> list[RuleStatus]:
        """Each rule's remaining requests and when the next one fits (nothing charged)."""
        now, wall = self._clock(), self._wall()
        out = []
        for rule in rules:
            level = self._level((project, rule), now)
            cost = rule.seconds / rule.value
            remaining = math.floor((rule.seconds - level) / cost + _EPSILON)
            wait = max(0.0, level + cost - rule.seconds)
            out.append(RuleStatus(rule, max(0, min(rule.value, remaining)), wall + wait))
        return out

    def _forget_drained(self, now: float) -> None:
        for key in [k for k, b in self._buckets.items() if b.level - (now - b.last) <= 0]:
            del self._buckets[key]


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
    """What the compute app holds: the counters and the cached rules."""

    limiter: RateLimiter = field(default_factory=RateLimiter)
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
    rules = await limits.rules.get(request.app[POOL], principal.project_id)
    denial = limits.limiter.check(principal.project_id, rules, request.method, target)
    if denial is not None:
        retry_after = max(1, math.ceil(denial.retry_after))
        log.info("api.rate_limited", verb=denial.rule.verb, uri=denial.rule.uri,
                 retry_after=retry_after)
        raise OverLimit("This request was rate-limited.", details=denial.rule.describe(),
                        retry_after=retry_after)
    return await handler(request)


async def project_status(request: web.Request, project_id: str) -> list[RuleStatus]:
    """The project's rules as this process counts them (for /limits)."""
    limits = request.app[RATE_LIMITS]
    rules = await limits.rules.get(request.app[POOL], project_id)
    return limits.limiter.status(project_id, rules)
