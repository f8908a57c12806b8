"""Admission of the password checks that logins ask for: a bounded number run
at once, a bounded number wait, and any beyond are refused at once.

A password check is scrypt (see ``passwords``): tens of milliseconds of CPU
and 16 MiB, on purpose. The identity site shares its process with the compute
API, so an unbounded queue of checks would let a flood of logins, even
unauthenticated ones with made-up names, hold the process's CPU and memory
and slow every compute request behind it. Here at most ``threads`` checks run
(each on a thread of the gate's own), at most ``queue`` more wait, and the
next login gets 503 with ``Retry-After`` without any hashing. The login
throttle (``throttle``) decides first whether a login may try at all; this
gate only bounds the work of those it lets through.

A slot is held until its thread has finished, not until the awaiting request
gives up: a client that disconnects mid-check does not free a slot while its
scrypt still runs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from services.api.identity.errors import ServiceUnavailable
from services.api.identity.passwords import burn_verification, verify_password

# A check takes well under a second; the client need not wait longer to retry.
_RETRY_AFTER_S = 1


def default_threads() -> int:
    """Half the machine's cores, at least one: the rest stays with the compute API."""
    return max(1, (os.cpu_count() or 2) // 2)


class PasswordGate:
    """Runs password checks on ``threads`` threads with at most ``queue`` waiting."""

    def __init__(self, *, threads: int, queue: int) -> None:
        self.threads = threads or default_threads()
        self._limit = self.threads + queue
        self._slots = asyncio.Semaphore(self.threads)
        self._executor = ThreadPoolExecutor(max_workers=self.threads,
                                            thread_name_prefix="login-scrypt")
        self.admitted = 0
        """Checks running or waiting now."""
        self.started = 0
        """Checks handed to a thread since the gate was made (for tests and metrics)."""

    async def verify(self, password: str, encoded: str | None) -> bool:
        """True if ``password`` matches ``encoded``; ``None`` (no such user) takes
        as long and is False.

        Raises:
            ServiceUnavailable: ``threads`` checks run and ``queue`` wait already.
        """
        if encoded is None:
            return await self._run(_burn, password)
        return await self._run(verify_password, password, encoded)

    async def _run(self, fn: Callable[..., bool], *args: str) -> bool:
        if self.admitted >= self._limit:
            raise ServiceUnavailable("Too many logins are being checked; try again shortly.",
                                     retry_after_s=_RETRY_AFTER_S)
        self.admitted += 1
        try:
            await self._slots.acquire()
        except BaseException:
            self.admitted -= 1
            raise
        try:
            future = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except BaseException:
            self._release()
            raise
        self.started += 1
        future.add_done_callback(lambda _: self._release())
        # Shielded: a cancelled request stops waiting, but the slot stays taken
        # until the thread is done with the hash.
        return await asyncio.shield(future)

    def _release(self) -> None:
        self._slots.release()
        self.admitted -= 1

    def close(self) -> None:
        """Stop the threads; checks not started yet are dropped."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _burn(password: str) -> bool:
    burn_verification(password)
    return False
