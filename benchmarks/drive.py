"""The closed loop the benchmarks drive a URL with: ``concurrency`` clients, each
sending the next GET as soon as its last answer is read, until ``n`` are done."""

from __future__ import annotations

import asyncio

import aiohttp


async def closed_loop(session: aiohttp.ClientSession, url: str, headers: dict[str, str],
                      n: int, concurrency: int) -> list[int]:
    """The statuses of ``n`` GETs of ``url``, in the order they were answered."""
    statuses: list[int] = []
    todo = iter(range(n))

    async def worker() -> None:
        for _ in todo:
            async with session.get(url, headers=headers) as r:
                await r.read()
                statuses.append(r.status)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses
