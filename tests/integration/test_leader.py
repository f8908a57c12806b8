"""Leader election (shared.leader) on real PostgreSQL: two replicas of one periodic
job against one database, each with its own pool as two processes would have."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.config import DatabaseSettings
from shared.db.pool import connect, create_pool
from shared.leader import Leadership


@pytest.fixture
async def pools(db_url: str) -> AsyncIterator[list[asyncpg.Pool]]:
    pools = [await create_pool(DatabaseSettings(url=db_url, pool_min=1, pool_max=3))
             for _ in range(2)]
    yield pools
    for pool in pools:
        await pool.close()


class Replica:
    """One replica's copy of the job: records the rounds it ran."""

    def __init__(self, pool: asyncpg.Pool, name: str, rounds: list[tuple[int, str]]) -> None:
        self.leader = Leadership(pool, "sweep")
        self.name = name
        self.rounds = rounds
        self.round = 0
        self.run = self.leader.guard(self._job)

    async def _job(self) -> None:
        self.rounds.append((self.round, self.name))


async def play(replicas: list[Replica], first: int, last: int) -> None:
    for n in range(first, last):
        for r in replicas:
            r.round = n
            await r.run()


async def test_one_replica_runs_each_round_and_a_dead_leader_hands_over(pools, db_url) -> None:
    rounds: list[tuple[int, str]] = []
    a, b = Replica(pools[0], "a", rounds), Replica(pools[1], "b", rounds)
    await play([a, b], 0, 3)
    assert rounds == [(0, "a"), (1, "a"), (2, "a")]
    assert (a.leader.leading, b.leader.leading) == (True, False)

    # The leader's connection is cut (as when its process dies or the network
    # drops): its session's lock goes with it.
    admin = await connect(db_url)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)",
                                    a.leader._conn.get_server_pid())
    finally:
        await admin.close()
    await play([b, a], 3, 5)   # b tries first now, and takes the free lock
    assert rounds[3:] == [(3, "b"), (4, "b")]
    assert (a.leader.leading, b.leader.leading) == (False, True)
    await b.leader.resign()  # a pool closes only once its connections are back


async def test_a_resigning_leader_hands_over_at_the_next_round(pools) -> None:
    rounds: list[tuple[int, str]] = []
    a, b = Replica(pools[0], "a", rounds), Replica(pools[1], "b", rounds)
    await play([a, b], 0, 1)
    await a.leader.resign()
    await play([b, a], 1, 2)
    assert rounds == [(0, "a"), (1, "b")]
    await b.leader.resign()


async def test_jobs_of_other_names_have_their_own_leader(pools) -> None:
    sweep, purge = Leadership(pools[0], "sweep"), Leadership(pools[1], "purge")
    assert await sweep.check() and await purge.check()
    other = Leadership(pools[1], "sweep")
    assert not await other.check() and not other.leading
    await sweep.resign()
    await purge.resign()
