"""Get VNC console (os-consoles, section 4.4.16) end to end, through the real console
proxy process: the URL's token opens a websocket relayed to the fake guest's RFB
server once; used, expired and made-up tokens are refused; bad types are 400 and
servers that do not run are 409."""

from __future__ import annotations

import base64
import hashlib
import struct
import uuid
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from tests.e2e.client import NS, Api

XML = {"Content-Type": "application/xml", "Accept": "application/xml"}


def _active(s):
    return s is not None and s["status"] == "ACTIVE"


def _proxy_base(cloud) -> str:
    # Its public URL, not its health URL: with replicas each has a health port
    # of its own, apart from the port they share.
    return cloud.stack.services["consoleproxy"].env_extra["NIMBUS_CONSOLEPROXY_PUBLIC_URL"]


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


@pytest.fixture(scope="module")
async def server(demo: Api):
    r = await demo.boot(name="console-vm")
    sid = r.json["server"]["id"]
    await demo.wait_status(sid, _active)
    yield sid
    await demo.delete(f"/servers/{sid}")
    await demo.wait_status(sid, lambda s: s is None)


async def _console(demo: Api, sid: str, kind: str = "novnc") -> str:
    r = await demo.post(f"/servers/{sid}/action", json={"os-getVNCConsole": {"type": kind}})
    assert r.status == 200, r.raw
    assert r.json["console"]["type"] == kind
    return r.json["console"]["url"]


class _Rfb:
    """Reads whole RFB messages off a websocket, whatever its framing."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.buf = ws, b""

    async def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += await self.ws.receive_bytes(timeout=10)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


async def _handshake(ws: aiohttp.ClientWebSocketResponse) -> tuple[bytes, str]:
    """The RFB 3.8 handshake with security None: the banner and the desktop's name."""
    rfb = _Rfb(ws)
    banner = await rfb.read(12)
    await ws.send_bytes(b"RFB 003.008\n")
    count = (await rfb.read(1))[0]
    assert 1 in await rfb.read(count)
    await ws.send_bytes(b"\x01")
    assert await rfb.read(4) == b"\x00\x00\x00\x00"
    await ws.send_bytes(b"\x01")
    init = await rfb.read(24)
    name = (await rfb.read(struct.unpack(">I", init[20:24])[0])).decode()
    return banner, name


async def _refused(cloud, url: str) -> tuple[int, str]:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await cloud.session.ws_connect(url)
    async with cloud.session.get(url) as r:
        return info.value.status, await r.text()


async def test_novnc_url_opens_the_guest_console_once(demo, cloud, server):
    url = await _console(demo, server)
    base = _proxy_base(cloud)
    assert url.startswith(f"{base}/vnc_auto.html?token=")
    query = parse_qs(urlsplit(url).query)
    assert query["title"] == [f"console-vm({server})"]  # as the spec's JSON example
    token = _token(url)
    async with cloud.session.get(url) as r:  # the page, which does not spend the token
        assert r.status == 200 and "websockify" in await r.text()
    async with cloud.session.ws_connect(f"{base}/websockify?token={token}",
                                        protocols=("binary",)) as ws:
        banner, name = await _handshake(ws)
    assert banner == b"RFB 003.008\n" and name == "console-vm"
    # Used once: a second connection, or the page, is refused.
    status, text = await _refused(cloud, f"{base}/websockify?token={token}")
    assert status == 401 and "already been used" in text
    async with cloud.session.get(url) as r:
        assert r.status == 401
    # Only a digest of the token is kept.
    conn = await cloud.db()
    try:
        row = await conn.fetchrow("SELECT * FROM console_tokens WHERE token_sha256 = $1",
                                  hashlib.sha256(token.encode()).digest())
    finally:
        await conn.close()
    assert row["used"] and str(row["server_id"]) == server and row["console_type"] == "novnc"
    assert token not in str(dict(row))


async def test_xvpvnc_console_in_xml(demo, cloud, server):
    r = await demo.post(f"/servers/{server}/action", headers=XML,
                        data=f'<?xml version="1.0" encoding="UTF-8"?>'
                             f'<os-getVNCConsole xmlns="{NS}" type="xvpvnc"/>')
    assert r.status == 200, r.raw
    root = r.xml
    assert root.tag == f"{{{NS}}}console"
    assert root.findtext(f"{{{NS}}}type") == "xvpvnc"
    url = root.findtext(f"{{{NS}}}url")
    assert url.startswith(f"{_proxy_base(cloud)}/console?token=")
    async with cloud.session.ws_connect(url) as ws:
        banner, name = await _handshake(ws)
    assert banner == b"RFB 003.008\n" and name == "console-vm"
    status, _ = await _refused(cloud, url)
    assert status == 401


async def test_expired_and_made_up_tokens_are_refused(demo, cloud, server):
    url = await _console(demo, server)
    token = _token(url)
    conn = await cloud.db()
    try:
        changed = await conn.execute(
            "UPDATE console_tokens SET expires_at = now() - interval '1 second' "
            "WHERE token_sha256 = $1", hashlib.sha256(token.encode()).digest())
        assert changed == "UPDATE 1"
    finally:
        await conn.close()
    base = _proxy_base(cloud)
    status, text = await _refused(cloud, f"{base}/websockify?token={token}")
    assert status == 401 and "expired" in text
    status, text = await _refused(cloud, f"{base}/websockify?token={uuid.uuid4()}")
    assert status == 401 and "not valid" in text
    async with cloud.session.get(f"{base}/vnc_auto.html?token={uuid.uuid4()}") as r:
        assert r.status == 401 and "not valid" in await r.text()


async def test_bad_console_types_are_400_and_stopped_or_building_servers_409(demo, alt, cloud,
                                                                             server):
    for body in ({"os-getVNCConsole": {"type": "spice-html5"}}, {"os-getVNCConsole": {}},
                 {"os-getVNCConsole": None}):
        r = await demo.post(f"/servers/{server}/action", json=body)
        assert r.status == 400 and "badRequest" in r.json, (body, r.raw)
    r = await demo.post(f"/servers/{server}/action", headers=XML,
                        data=f'<os-getVNCConsole xmlns="{NS}" type="rdp"/>')
    assert r.status == 400 and r.xml.tag.endswith("badRequest")
    r = await alt.post(f"/servers/{server}/action", json={"os-getVNCConsole": {"type": "novnc"}})
    assert r.status == 404

    r = await demo.boot(name="console-busy")
    busy = r.json["server"]["id"]
    r = await demo.post(f"/servers/{busy}/action", json={"os-getVNCConsole": {"type": "novnc"}})
    assert r.status == 409 and "conflictingRequest" in r.json, r.raw
    await demo.wait_status(busy, _active)
    r = await demo.post(f"/servers/{busy}/action", json={"os-stop": None})
    assert r.status == 202, r.raw
    await demo.wait_status(busy, lambda s: s["status"] == "SHUTOFF")
    r = await demo.post(f"/servers/{busy}/action", json={"os-getVNCConsole": {"type": "novnc"}})
    assert r.status == 409, r.raw
    await demo.delete(f"/servers/{busy}")
    await demo.wait_status(busy, lambda s: s is None)


async def _upgrade_refused(cloud, url: str) -> tuple[int, str]:
    """A websocket upgrade the proxy refuses: its status and the message it gives."""
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(uuid.uuid4().bytes).decode()}
    async with cloud.session.get(url, headers=headers) as r:
        assert r.status != 101
        return r.status, await r.text()


async def test_a_token_for_a_console_that_went_away_is_refused(demo, cloud):
    r = await demo.boot(name="console-goes")
    sid = r.json["server"]["id"]
    await demo.wait_status(sid, _active)
    base = _proxy_base(cloud)
    stopped = _token(await _console(demo, sid))
    deleted = _token(await _console(demo, sid))
    r = await demo.post(f"/servers/{sid}/action", json={"os-stop": None})
    assert r.status == 202, r.raw
    await demo.wait_status(sid, lambda s: s["status"] == "SHUTOFF")
    # The agent no longer shows a console there: the proxy does not connect.
    status, text = await _upgrade_refused(cloud, f"{base}/websockify?token={stopped}")
    assert status == 401 and "no longer available" in text
    await demo.delete(f"/servers/{sid}")
    await demo.wait_status(sid, lambda s: s is None)
    status, text = await _upgrade_refused(cloud, f"{base}/websockify?token={deleted}")
    assert status == 401 and "no longer exists" in text


async def test_a_browser_may_open_the_console_only_from_the_proxys_own_page(demo, cloud, server):
    url = await _console(demo, server)
    base = _proxy_base(cloud)
    async with cloud.session.get(url) as r:
        assert r.status == 200
        assert r.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        # The page's websocket goes to the proxy's public URL (make up sets it).
        assert f"connect-src {base.replace('http://', 'ws://')};" in \
            r.headers["Content-Security-Policy"]
    relay = f"{base}/websockify?token={_token(url)}"
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await cloud.session.ws_connect(relay, origin="http://attacker.example")
    assert info.value.status == 403
    async with cloud.session.ws_connect(relay, origin=base, protocols=("binary",)) as ws:
        banner, name = await _handshake(ws)
    assert banner == b"RFB 003.008\n" and name == "console-vm"
