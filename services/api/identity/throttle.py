"""Login throttling: how many password logins a client address, and a user,
may attempt, decided before any password is checked.

Each address and each user has an allowance (a token bucket): it holds up to
a burst of failed logins and refills at a steady rate per minute
(``login_*_burst``, ``login_*_per_minute``). A login reserves one failure's
worth from both the address's and the user's allowance before anything else
happens; if either lacks it, the login is refused with 429 and a
``Retry-After`` saying when it would fit, without touching the database or
hashing anything. A login that then succeeds gets most of its reservation
back and costs only ``login_success_cost`` of a failure, so a user's own
normal use (scripts logging in again and again included) does not throttle
them; a failed one keeps the whole charge. A login refused for another reason
before its password was checked (the password gate was full) costs nothing.

What a flood achieves:

* From one address: its burst of guesses, then ``login_address_per_minute``
  guesses a minute; every other attempt is a 429 that costs a dictionary
  lookup. Other addresses are not affected. IPv6 addresses count by their /64,
  the block one subscriber usually holds, so hopping within it gains nothing.
* Against one user, from many addresses: at most ``login_user_burst`` guesses,
  then ``login_user_per_minute`` a minute, in total. The price is a lockout: as
  long as the flood keeps the user's allowance empty, the user cannot log in
  by password either (tokens already issued keep working, and rescoping them
  is not throttled, as it checks no password). That is the trade every
  per-account limit makes; the alternative is unlimited guessing.
* From many addresses against many users: each pair of allowances holds, and
  the password gate (``password_gate``) bounds the hashing the process does at
  all, so the compute API beside it keeps its share of the CPU.

A user is counted under the name it is asked for by (case-folded, whatever
the domain) or the id; once the user is found, the attempt is charged to its
other form too, so asking by id instead of by name gives no second allowance.
An unknown name has an allowance like a known one, so a 429 does not tell
whether a name exists.

Allowances live in this process's memory, as the compute API's rate limits
do: with several API processes each gives its own. The tables are bounded
(``login_throttle_entries``); a full allowance is forgotten as soon as it is
touched, and beyond the bound the least recently seen key is.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from services.api.identity.errors import TooManyRequests
from services.api.identity.settings import IdentitySettings

# What one failed login costs; the bursts and rates count failures.
_FAILURE = 1.0


class Allowances:
    """Token buckets by key: each holds up to ``burst`` and refills at ``per_s``.

    Only keys below a full bucket are stored: the absence of a key is a full one.
    """

    def __init__(self, *, burst: float, per_s: float, max_keys: int,
                 clock: Callable[[], float]) -> None:
        self.burst = burst
        self.per_s = per_s
        self._max_keys = max_keys
        self._clock = clock
        self._levels: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._levels)

    def level(self, key: str) -> float:
        """What ``key`` holds now."""
        stored = self._levels.get(key)
        if stored is None:
            return self.burst
        held, at = stored
        return min(self.burst, held + (self._clock() - at) * self.per_s)

    def wait_for(self, key: str, amount: float) -> float:
        """Seconds until ``key`` holds ``amount`` (0 if it does now)."""
        short = amount - self.level(key)
        # Tenths refunded and taken do not add up exactly in floating point.
        return 0.0 if short <= 1e-9 else short / self.per_s

    def take(self, key: str, amount: float) -> None:
        """Take ``amount`` from ``key``, to no lower than empty."""
        self._store(key, max(0.0, self.level(key) - amount))

    def give(self, key: str, amount: float) -> None:
        """Give ``amount`` back to ``key``, to no more than full."""
        self._store(key, min(self.burst, self.level(key) + amount))

    def _store(self, key: str, level: float) -> None:
        if level >= self.burst:
            self._levels.pop(key, None)
            return
        self._levels[key] = (level, self._clock())
        self._levels.move_to_end(key)
        while len(self._levels) > self._max_keys:
            self._levels.popitem(last=False)


class LoginAttempt:
    """One admitted login's reservations, to settle once its password is checked."""

    def __init__(self, throttle: LoginThrottle, charged: list[tuple[Allowances, str]]) -> None:
        self._throttle = throttle
        self._charged = charged

    def also(self, user_key: str) -> None:
        """Charge the user's other form (id or name) as well, without refusing."""
        allowances = self._throttle.users
        if allowances is not None and all(key != user_key for _, key in self._charged):
            allowances.take(user_key, _FAILURE)
            self._charged.append((allowances, user_key))

    def succeeded(self) -> None:
        """The password was right: keep only a success's cost."""
        self._refund(_FAILURE - self._throttle.success_cost)

    def cancel(self) -> None:
        """No password was checked after all: charge nothing."""
        self._refund(_FAILURE)

    def _refund(self, amount: float) -> None:
        for allowances, key in self._charged:
            allowances.give(key, amount)
        self._charged = []


class LoginThrottle:
    """The per-address and per-user allowances of one identity app."""

    def __init__(self, settings: IdentitySettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        def table(burst: float, per_minute: float) -> Allowances | None:
            if burst <= 0:
                return None
            return Allowances(burst=burst, per_s=per_minute / 60.0,
                              max_keys=settings.login_throttle_entries, clock=clock)

        self.addresses = table(settings.login_address_burst, settings.login_address_per_minute)
        self.users = table(settings.login_user_burst, settings.login_user_per_minute)
        self.success_cost = settings.login_success_cost

    def begin(self, address: str, user_key: str) -> LoginAttempt:
        """Reserve a failed login's cost from the address and the user.

        Raises:
            TooManyRequests: either has less than that left; nothing is charged.
        """
        wanted = [(a, k) for a, k in ((self.addresses, address), (self.users, user_key))
                  if a is not None]
        wait = max((a.wait_for(k, _FAILURE) for a, k in wanted), default=0.0)
        if wait > 0:
            raise TooManyRequests(retry_after_s=max(1, math.ceil(wait)))
        for allowances, key in wanted:
            allowances.take(key, _FAILURE)
        return LoginAttempt(self, wanted)


def user_key(*, user_id: str | None = None, user_name: str | None = None) -> str:
    """The key a user's allowance is kept under, by id or by name (any domain)."""
    return f"id:{user_id}" if user_id is not None else f"name:{(user_name or '').casefold()}"
