"""The login throttle's allowances and the client address it counts by, on a
clock the tests move (no sleeps)."""

from __future__ import annotations

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from services.api.identity.client_address import client_address
from services.api.identity.errors import TooManyRequests
from services.api.identity.settings import IdentitySettings, trusted_networks
from services.api.identity.throttle import Allowances, LoginThrottle, user_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _throttle(clock: Clock, **settings: float) -> LoginThrottle:
    base = {"login_address_burst": 5.0, "login_address_per_minute": 6.0,
            "login_user_burst": 3.0, "login_user_per_minute": 2.0,
            "login_success_cost": 0.1}
    return LoginThrottle(IdentitySettings(**{**base, **settings}), clock=clock)


def _fail(throttle: LoginThrottle, address: str = "10.0.0.1", user: str = "name:demo") -> None:
    throttle.begin(address, user)  # a failure keeps its whole reservation


def test_allowances_refill_at_their_rate_and_cap_at_the_burst() -> None:
    clock = Clock()
    a = Allowances(burst=4, per_s=0.5, max_keys=100, clock=clock)
    assert a.level("k") == 4 and len(a) == 0
    a.take("k", 3)
    assert a.level("k") == 1 and a.wait_for("k", 2) == pytest.approx(2.0)
    clock.now += 1
    assert a.level("k") == pytest.approx(1.5)
    clock.now += 100
    assert a.level("k") == 4
    a.take("k", 10)
    assert a.level("k") == 0          # never below empty
    a.give("k", 10)
    assert a.level("k") == 4 and len(a) == 0  # a full allowance is not kept


def test_allowances_forget_the_least_recently_seen_beyond_the_bound() -> None:
    clock = Clock()
    a = Allowances(burst=2, per_s=1 / 60, max_keys=100, clock=clock)
    for i in range(150):
        a.take(f"k{i}", 1)
    assert len(a) == 100
    assert a.level("k0") == 2 and a.level("k149") == pytest.approx(1)


def test_failures_from_one_address_are_refused_after_the_burst() -> None:
    clock = Clock()
    throttle = _throttle(clock, login_user_burst=0)
    for i in range(5):
        _fail(throttle, user=f"name:user{i}")
    with pytest.raises(TooManyRequests) as refused:
        throttle.begin("10.0.0.1", "name:someone-else")
    assert refused.value.code == 429
    assert refused.value.retry_after_s == 10     # one failure refills in 60/6 s
    throttle.begin("10.0.0.2", "name:user0")     # another address is not affected
    clock.now += 10
    throttle.begin("10.0.0.1", "name:user0")     # refilled by one


def test_failures_against_one_user_are_refused_from_any_address() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    for i in range(3):
        _fail(throttle, address=f"192.0.2.{i}", user="name:demo")
    with pytest.raises(TooManyRequests) as refused:
        throttle.begin("198.51.100.7", "name:demo")
    assert refused.value.retry_after_s == 30
    throttle.begin("198.51.100.7", "name:alt")


def test_successes_cost_a_tenth_and_cancelled_logins_nothing() -> None:
    throttle = _throttle(Clock())
    assert throttle.addresses is not None and throttle.users is not None
    for _ in range(20):   # 20 successes weigh 2 failures
        throttle.begin("10.0.0.1", "name:demo").succeeded()
    assert throttle.users.level("name:demo") == pytest.approx(1)
    assert throttle.addresses.level("10.0.0.1") == pytest.approx(3)
    # A login must find a whole failure's worth left, whatever it turns out to be.
    throttle.begin("10.0.0.1", "name:demo").succeeded()
    with pytest.raises(TooManyRequests):
        throttle.begin("10.0.0.1", "name:demo")
    for _ in range(100):
        throttle.begin("10.0.0.2", "name:alt").cancel()
    assert throttle.users.level("name:alt") == 3 and throttle.addresses.level("10.0.0.2") == 5


def test_a_refused_login_charges_neither_side() -> None:
    throttle = _throttle(Clock())
    assert throttle.addresses is not None and throttle.users is not None
    for _ in range(3):
        _fail(throttle, address="10.0.0.3", user="name:alt")
    with pytest.raises(TooManyRequests):
        throttle.begin("10.0.0.4", "name:alt")
    assert throttle.addresses.level("10.0.0.4") == 5
    for _ in range(2):
        _fail(throttle, address="10.0.0.3", user=f"name:other{_}")
    with pytest.raises(TooManyRequests):
        throttle.begin("10.0.0.3", "name:fresh")
    assert throttle.users.level("name:fresh") == 3


def test_a_user_named_by_id_and_by_name_shares_one_allowance() -> None:
    throttle = _throttle(Clock())
    for _ in range(3):
        attempt = throttle.begin("10.0.0.1", user_key(user_name="Demo"))
        attempt.also(user_key(user_id="u1"))  # the user was found: its id is charged too
    with pytest.raises(TooManyRequests):
        throttle.begin("10.0.0.2", user_key(user_id="u1"))
    with pytest.raises(TooManyRequests):
        throttle.begin("10.0.0.3", user_key(user_name="dEMO"))


def test_a_zero_burst_turns_a_limit_off() -> None:
    throttle = _throttle(Clock(), login_address_burst=0, login_user_burst=0)
    for _ in range(1000):
        _fail(throttle)


def _request(remote: str, forwarded: list[str] | None = None) -> web.Request:
    headers = [("X-Forwarded-For", v) for v in forwarded or []]
    return make_mocked_request("POST", "/v3/auth/tokens",
                               headers=CIMultiDict(headers)).clone(remote=remote)


@pytest.mark.parametrize("remote,forwarded,trusted,expected", [
    # not behind a trusted proxy: X-Forwarded-For is anyone's to write
    ("203.0.113.9", ["1.2.3.4"], "", "203.0.113.9"),
    ("203.0.113.9", ["1.2.3.4"], "10.0.0.0/8", "203.0.113.9"),
    # behind one: the rightmost hop that is not a trusted proxy
    ("10.0.0.5", ["6.6.6.6, 198.51.100.4"], "10.0.0.0/8", "198.51.100.4"),
    ("10.0.0.5", ["6.6.6.6", "198.51.100.4, 10.0.0.7"], "10.0.0.0/8", "198.51.100.4"),
    ("10.0.0.5", [], "10.0.0.0/8", "10.0.0.5"),
    ("10.0.0.5", ["junk, 198.51.100.4:5555"], "10.0.0.0/8", "198.51.100.4"),
    ("10.0.0.5", ["198.51.100.4, junk"], "10.0.0.0/8", "10.0.0.5"),
    # IPv6 counts by /64; IPv4 mapped into IPv6 as IPv4
    ("2001:db8:1:2:aaaa::1", [], "", "2001:db8:1:2::/64"),
    ("::ffff:10.0.0.5", ["198.51.100.4"], "10.0.0.0/8", "198.51.100.4"),
    ("10.0.0.5", ["[2001:db8::7]:443"], "10.0.0.0/8", "2001:db8::/64"),
])
def test_client_address(remote: str, forwarded: list[str], trusted: str, expected: str) -> None:
    assert client_address(_request(remote, forwarded), trusted_networks(trusted)) == expected


def test_a_bad_trusted_proxies_setting_fails_at_load() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"trusted_proxies": "10.0.0.0/8, proxy.example"}, IdentitySettings)
