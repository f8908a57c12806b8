"""The closed loop the benchmarks drive a URL with: ``concurrency`` clients, each
sending the next request as soon as its last answer is read, until ``n`` are done."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp


async def closed_loop(session: aiohttp.ClientSession, url: str | Callable[[int], str],
                      headers: dict[str, str], n: int, concurrency: int, *,
                      method: str = "GET", body: Callable[[int], bytes] | None = None,
                      latencies: list[float] | None = None) -> list[int]:
    """The statuses of ``n`` requests of ``url`` (or of ``url(i)`` for the i-th), in
    the order they were answered; ``body(i)`` is the i-th request's body. Each
    request's seconds are appended to ``latencies`` when it is given."""
    statuses: list[int] = []
    todo = iter(range(n))
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        for i in todo:
            started = loop.time()
            async with session.request(method, url(i) if callable(url) else url, headers=headers,
                                       data=body(i) if body else None) as r:
                await r.read()
                statuses.append(r.status)
            if latencies is not None:
                latencies.append(loop.time() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses
