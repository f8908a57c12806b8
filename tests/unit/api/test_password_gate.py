"""The password gate: checks run on its own threads, a bounded number wait, and
the next is refused at once; a slot is held until its hash is really done."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from services.api.identity.errors import ServiceUnavailable
from services.api.identity.password_gate import PasswordGate, default_threads
from services.api.identity.passwords import hash_password

# Four times the usual scrypt cost (64 MiB, a few tenths of a second): long
# enough that a check is still running when the test looks.
SLOW_HASH = "scrypt$65536$8$1$" + "A" * 22 + "$" + "A" * 43


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.005)


async def test_checks_passwords_and_burns_time_for_unknown_users() -> None:
    gate = PasswordGate(threads=2, queue=4)
    try:
        encoded = hash_password("pw")
        assert await gate.verify("pw", encoded)
        assert not await gate.verify("nope", encoded)
        assert not await gate.verify("pw", None)
        assert gate.started == 3 and gate.admitted == 0
    finally:
        gate.close()


async def test_beyond_the_queue_a_check_is_refused_without_hashing() -> None:
    gate = PasswordGate(threads=1, queue=1)
    try:
        first = asyncio.create_task(gate.verify("x", SLOW_HASH))
        second = asyncio.create_task(gate.verify("x", SLOW_HASH))
        await _until(lambda: gate.admitted == 2)
        with pytest.raises(ServiceUnavailable) as refused:
            await gate.verify("x", SLOW_HASH)
        assert refused.value.code == 503 and refused.value.retry_after_s == 1
        assert gate.started == 1             # the second waits; the third never ran
        assert await first is False and await second is False
        assert gate.started == 2 and gate.admitted == 0
        assert not await gate.verify("x", SLOW_HASH)  # room again
    finally:
        gate.close()


async def test_a_cancelled_login_keeps_its_slot_until_the_hash_is_done() -> None:
    gate = PasswordGate(threads=1, queue=0)
    try:
        login = asyncio.create_task(gate.verify("x", SLOW_HASH))
        await _until(lambda: gate.started == 1)
        login.cancel()
        with pytest.raises(asyncio.CancelledError):
            await login
        # The thread still hashes: no second check may start beside it.
        assert gate.admitted == 1
        with pytest.raises(ServiceUnavailable):
            await gate.verify("x", SLOW_HASH)
        await _until(lambda: gate.admitted == 0)
        assert gate.started == 1
    finally:
        gate.close()


def test_zero_threads_means_half_the_cores() -> None:
    gate = PasswordGate(threads=0, queue=0)
    try:
        assert gate.threads == default_threads() >= 1
    finally:
        gate.close()
