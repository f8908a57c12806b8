"""The console proxy in-process against real PostgreSQL and a real RFB server (the fake
driver's): tokens are spent once, atomically; refused tokens open nothing."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from services.compute_agent.drivers.fake_vnc import BANNER, FakeVncServer
from services.consoleproxy.app import create_app
from services.consoleproxy.settings import ConsoleProxySettings, Settings
from services.consoleproxy.validate import ConsoleGone, ConsoleUnreachable
from shared.config import DatabaseSettings
from shared.db import console_tokens
from shared.db.pool import create_pool


@pytest.fixture
async def pool(db_url):
    p = await create_pool(DatabaseSettings(url=db_url, pool_min=1, pool_max=8))
    yield p
    await p.close()


@pytest.fixture
async def vnc():
    server = FakeVncServer("guest-1")
    await server.start()
    yield server
    await server.close()


class Verdicts:
    """What the stand-in for the compute agents says of each console (default: fine)."""

    def __init__(self) -> None:
        self.refuse: dict[uuid.UUID, Exception] = {}
        self.asked: list[uuid.UUID] = []

    async def __call__(self, target) -> None:
        self.asked.append(target.server_id)
        if target.server_id in self.refuse:
            raise self.refuse[target.server_id]


@pytest.fixture
async def verdicts():
    return Verdicts()


@pytest.fixture
async def proxy(pool, db_url, verdicts):
    settings = Settings(database=DatabaseSettings(url=db_url),
                        consoleproxy=ConsoleProxySettings(connect_timeout_s=2))
    server = TestServer(create_app(settings, pool, validate=verdicts))
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield server, session
    await server.close()


async def _issue(pool, port: int, *, kind: str = "novnc", ttl_s: float = 600,
                 host: str = "127.0.0.1", server_id: uuid.UUID | None = None) -> str:
    token = str(uuid.uuid4())
    async with pool.acquire() as conn:
        await console_tokens.issue(conn, token, server_id=server_id or uuid.uuid4(),
                                   project_id="p", console_type=kind, host=host, port=port,
                                   ttl_s=ttl_s)
    return token


def _url(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


async def _refused(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await session.ws_connect(url)
    async with session.get(url) as r:  # the same URL as a plain GET says why
        return info.value.status, await r.text()


async def test_a_token_opens_one_relayed_connection_to_the_guest(pool, proxy, vnc):
    server, session = proxy
    token = await _issue(pool, vnc.port)
    # The page does not spend the token.
    async with session.get(_url(server, f"/vnc_auto.html?token={token}&title=vm(1)")) as r:
        assert r.status == 200 and r.content_type == "text/html"
        page = await r.text()
        assert "<title>vm(1)</title>" in page and "websockify?token=" in page
        assert "http://" not in page and "https://" not in page  # no external assets
    async with session.ws_connect(_url(server, f"/websockify?token={token}"),
                                  protocols=("binary",)) as ws:
        assert ws.protocol == "binary"
        banner = await ws.receive_bytes(timeout=5)
        assert banner == BANNER
        await ws.send_bytes(b"RFB 003.008\n")
        assert await ws.receive_bytes(timeout=5) == b"\x01\x01"
    status, text = await _refused(session, _url(server, f"/websockify?token={token}"))
    assert status == 401 and "already been used" in text
    async with session.get(_url(server, f"/vnc_auto.html?token={token}")) as r:
        assert r.status == 401 and "already been used" in await r.text()
    assert vnc.connections == 1


async def test_base64_clients_get_text_frames(pool, proxy, vnc):
    import base64
    server, session = proxy
    token = await _issue(pool, vnc.port)
    async with session.ws_connect(_url(server, f"/websockify?token={token}"),
                                  protocols=("base64",)) as ws:
        assert ws.protocol == "base64"
        assert base64.b64decode(await ws.receive_str(timeout=5)) == BANNER


async def test_expired_unknown_and_missing_tokens_are_refused(pool, proxy, vnc):
    server, session = proxy
    expired = await _issue(pool, vnc.port, ttl_s=0.001)
    await asyncio.sleep(0.01)
    status, text = await _refused(session, _url(server, f"/websockify?token={expired}"))
    assert status == 401 and "expired" in text
    status, text = await _refused(session, _url(server, f"/websockify?token={uuid.uuid4()}"))
    assert status == 401 and "not valid" in text
    status, text = await _refused(session, _url(server, "/websockify"))
    assert status == 401 and "no token" in text
    status, text = await _refused(session, _url(server, "/websockify?token=" + "x" * 500))
    assert status == 401
    assert vnc.connections == 0
    async with session.get(_url(server, f"/vnc_auto.html?token={expired}")) as r:
        assert r.status == 401 and "expired" in await r.text()


async def test_a_token_only_opens_its_own_console_type(pool, proxy, vnc):
    server, session = proxy
    xvp = await _issue(pool, vnc.port, kind="xvpvnc")
    status, text = await _refused(session, _url(server, f"/websockify?token={xvp}"))
    assert status == 401 and "another type" in text
    async with session.ws_connect(_url(server, f"/console?token={xvp}")) as ws:
        assert await ws.receive_bytes(timeout=5) == BANNER


async def test_a_plain_get_of_the_relay_leaves_the_token_unspent(pool, proxy, vnc):
    server, session = proxy
    token = await _issue(pool, vnc.port)
    async with session.get(_url(server, f"/websockify?token={token}")) as r:
        assert r.status == 400
    async with session.ws_connect(_url(server, f"/websockify?token={token}")) as ws:
        assert await ws.receive_bytes(timeout=5) == BANNER


async def test_racing_connections_with_one_token_get_one_console(pool, vnc):
    token = await _issue(pool, vnc.port)

    async def spend():
        async with pool.acquire() as conn:
            return await console_tokens.consume(conn, token, "novnc")

    results = await asyncio.gather(*(spend() for _ in range(8)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].port == vnc.port


async def test_a_console_the_agent_no_longer_confirms_is_not_connected(pool, proxy, vnc,
                                                                       verdicts):
    server, session = proxy
    gone, silent = uuid.uuid4(), uuid.uuid4()
    verdicts.refuse[gone] = ConsoleGone("The server of this console no longer exists.")
    verdicts.refuse[silent] = ConsoleUnreachable("The compute host did not answer.")
    token = await _issue(pool, vnc.port, server_id=gone)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await session.ws_connect(_url(server, f"/websockify?token={token}"))
    assert info.value.status == 401
    token = await _issue(pool, vnc.port, server_id=silent)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await session.ws_connect(_url(server, f"/websockify?token={token}"))
    assert info.value.status == 503
    assert verdicts.asked == [gone, silent]
    assert vnc.connections == 0


async def test_an_unreachable_guest_is_a_502(pool, proxy):
    server, session = proxy
    vanished = FakeVncServer("gone")
    port = await vanished.start()
    await vanished.close()
    token = await _issue(pool, port)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await session.ws_connect(_url(server, f"/websockify?token={token}"))
    assert info.value.status == 502


async def test_only_the_digest_is_stored_and_old_tokens_are_purged(pool, vnc):
    token = await _issue(pool, vnc.port, ttl_s=0.001)
    async with pool.acquire() as conn:
        stored = await conn.fetch("SELECT token_sha256::text AS t FROM console_tokens")
        assert all(token not in r["t"] for r in stored)
        assert await conn.fetchval("SELECT count(*) FROM console_tokens WHERE token_sha256 = $1",
                                   console_tokens.digest(token)) == 1
        await asyncio.sleep(0.01)
        assert await console_tokens.purge(conn, 3600) == 0  # recently expired: kept
        assert await console_tokens.purge(conn, 0) == 1


async def test_health_reports_the_database(proxy):
    server, session = proxy
    async with session.get(_url(server, "/healthz")) as r:
        assert r.status == 200
        assert (await r.json())["database"] == "ok"
