"""The console proxy against cross-site use: websockets from another origin are
refused before their token is touched, the token is read from the query string
only, and every page forbids framing and carries a policy that lets the console
page run its own script and nothing else."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from lxml import html as lxml_html

from services.compute_agent.drivers.fake_vnc import BANNER
from services.consoleproxy.app import create_app
from services.consoleproxy.settings import ConsoleProxySettings, Settings
from shared.config import DatabaseSettings
from tests.integration.test_console_proxy import _issue, pool, vnc  # noqa: F401  (fixtures)

Proxy = tuple[str, aiohttp.ClientSession]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def start_proxy(pool, db_url) -> AsyncIterator[Callable[..., Awaitable[Proxy]]]:
    """Start a proxy on a known port; ``public=True`` makes its public URL its own."""
    servers: list[TestServer] = []
    session = aiohttp.ClientSession()

    async def start(*, public: bool | str) -> Proxy:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        public_url = url if public is True else (public or "")
        settings = Settings(database=DatabaseSettings(url=db_url),
                            consoleproxy=ConsoleProxySettings(public_url=public_url))
        server = TestServer(create_app(settings, pool), host="127.0.0.1", port=port)
        await server.start_server()
        servers.append(server)
        return url, session

    yield start
    await session.close()
    for server in servers:
        await server.close()


async def _opens(session: aiohttp.ClientSession, url: str, **kw) -> bool:
    async with session.ws_connect(url, **kw) as ws:
        return await ws.receive_bytes(timeout=5) == BANNER


async def _status(session: aiohttp.ClientSession, url: str, **kw) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await session.ws_connect(url, **kw)
    return info.value.status


@pytest.mark.parametrize("public", [True, False], ids=["public_url", "no_public_url"])
async def test_a_foreign_origin_is_refused_before_the_token_is_spent(pool, vnc, start_proxy,
                                                                     public):
    base, session = await start_proxy(public=public)
    token = await _issue(pool, vnc.port)
    url = f"{base}/websockify?token={token}"
    port = base.rsplit(":", 1)[1]
    for foreign in ("http://evil.example", f"http://evil.example:{port}", "null",
                    f"http://localhost:{port}", f"http://127.0.0.1:{int(port) + 1}"):
        assert await _status(session, url, origin=foreign) == 403, foreign
    if public:  # a configured public URL is compared with its scheme too
        assert await _status(session, url, origin=f"https://127.0.0.1:{port}") == 403
    xvp = await _issue(pool, vnc.port, kind="xvpvnc")
    assert await _status(session, f"{base}/console?token={xvp}", origin="http://evil.example") \
        == 403
    assert vnc.connections == 0
    # The token was not spent: the proxy's own page may still open it.
    assert await _opens(session, url, origin=base)
    assert await _opens(session, f"{base}/console?token={xvp}")  # no Origin: not a browser


async def test_a_token_in_a_cookie_is_not_read(pool, vnc, start_proxy):
    base, session = await start_proxy(public=True)
    token = await _issue(pool, vnc.port)
    headers = {"Cookie": f"token={token}"}
    assert await _status(session, f"{base}/websockify", headers=headers) == 401
    async with session.get(f"{base}/vnc_auto.html", headers=headers) as r:
        assert r.status == 401 and "no token" in await r.text()
    assert await _opens(session, f"{base}/websockify?token={token}")  # still unspent


def _sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _policy(header: str) -> dict[str, list[str]]:
    directives = (d.split() for d in header.split(";") if d.strip())
    return {d[0]: d[1:] for d in directives}


@pytest.mark.parametrize("public,connect_src,ws_base", [
    (True, None, "ws://127.0.0.1:{port}/"),
    ("https://console.example/vnc/", "wss://console.example", "wss://console.example/vnc/"),
    (False, "'self'", ""),
])
async def test_the_page_may_run_its_own_script_and_nothing_else(pool, vnc, start_proxy, public,
                                                                connect_src, ws_base):
    base, session = await start_proxy(public=public)
    port = base.rsplit(":", 1)[1]
    token = await _issue(pool, vnc.port)
    # A forged Host changes nothing: the websocket's URL comes from the public URL
    # or, without one, from where the browser loaded the page.
    async with session.get(f"{base}/vnc_auto.html?token={token}&title=vm",
                           headers={"Host": "evil.example:666"}) as r:
        assert r.status == 200
        page = await r.text()
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "no-referrer"
        policy = _policy(r.headers["Content-Security-Policy"])
    doc = lxml_html.fromstring(page)
    scripts = doc.xpath("//script[not(@type)]")
    styles = doc.xpath("//style")
    assert len(scripts) == 1 and len(styles) == 1
    assert not doc.xpath("//*[@src or @href or @style or @srcset]")
    assert not [a for el in doc.iter() for a in el.attrib if a.startswith("on")]
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == [_sha256_source(scripts[0].text)]
    assert policy["style-src"] == [_sha256_source(styles[0].text)]
    assert policy["connect-src"] == [(connect_src or base.replace("http:", "ws:"))]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'none'"]
    assert set(policy) == {"default-src", "script-src", "style-src", "connect-src",
                           "frame-ancestors", "base-uri", "form-action"}
    config = json.loads(doc.xpath("//script[@type='application/json']")[0].text)
    assert config == {"base": ws_base.format(port=port), "path": f"websockify?token={token}"
                                                                 "&title=vm"}
    assert "evil" not in page and "evil" not in r.headers["Content-Security-Policy"]


async def test_every_other_response_allows_nothing_and_no_framing(pool, start_proxy):
    base, session = await start_proxy(public=True)
    for path in ("/vnc_auto.html?token=nope", "/websockify", "/healthz", "/nothing-here"):
        async with session.get(base + path) as r:
            assert r.headers["X-Frame-Options"] == "DENY", path
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert _policy(r.headers["Content-Security-Policy"]) == {
                "default-src": ["'none'"], "base-uri": ["'none'"], "form-action": ["'none'"],
                "frame-ancestors": ["'none'"]}, path


# A DOM just big enough for the page's script; the WebSocket is node's own, so
# the script really talks RFB to the fake guest through the proxy.
_DOM = """
const elements = {};
function element(id) {
  return elements[id] || (elements[id] = {textContent: "", width: 0, height: 0,
    getContext() { return {fillRect() {}}; }});
}
globalThis.location = {protocol: "http:", host: %(host)s, pathname: "/vnc_auto.html"};
globalThis.document = {getElementById: element};
element("console-config").textContent = %(config)s;
const poll = setInterval(() => {
  const text = element("status").textContent;
  if (text.startsWith("Connected to ") && !text.includes("proxy")) {
    console.log(text); clearInterval(poll); process.exit(0);
  }
}, 20);
setTimeout(() => { console.log("gave up: " + element("status").textContent); process.exit(1); },
           10000);
"""


def _node_with_websocket() -> list[str] | None:
    """A node command line whose global WebSocket exists (node 22, or 20 with a flag)."""
    node = shutil.which("node")
    if node is None:
        return None
    for flags in ([], ["--experimental-websocket"]):
        probe = subprocess.run([node, *flags, "-e", "process.exit(typeof WebSocket === "
                                "'function' ? 0 : 1)"], capture_output=True)
        if probe.returncode == 0:
            return [node, *flags]
    return None


@pytest.mark.skipif(_node_with_websocket() is None, reason="needs node with a WebSocket")
@pytest.mark.parametrize("public", [True, False], ids=["public_url", "no_public_url"])
async def test_the_pages_script_reaches_the_guest(pool, vnc, start_proxy, public, tmp_path):
    base, session = await start_proxy(public=public)
    token = await _issue(pool, vnc.port)
    async with session.get(f"{base}/vnc_auto.html?token={token}") as r:
        doc = lxml_html.fromstring(await r.text())
    script = doc.xpath("//script[not(@type)]")[0].text
    config = doc.xpath("//script[@type='application/json']")[0].text
    program = Path(tmp_path, "page.js")
    program.write_text(_DOM % {"host": json.dumps(base.removeprefix("http://")),
                               "config": json.dumps(config)} + script)
    node = _node_with_websocket() or []
    done = await asyncio.to_thread(subprocess.run, [*node, str(program)],
                                   capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == f"Connected to {vnc.name} (640x480)"
    assert vnc.connections == 1
