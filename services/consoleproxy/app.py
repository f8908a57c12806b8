"""The console proxy's web app: pages and websockets that reach guests' consoles.

Routes:

* ``GET /vnc_auto.html?token=...`` (and ``/vnc.html``): the novnc console page
  (see ``page``) for a token that may still be used; the token is not spent.
* ``GET /websockify?token=...``: a websocket (subprotocol ``binary``, or
  ``base64`` for old clients) relayed byte for byte to the guest's VNC server
  over TCP. This spends the novnc token: one guarded UPDATE, so a token opens
  one connection, ever.
* ``GET /console?token=...``: the same relay for an ``xvpvnc`` token.
* ``GET /healthz``: ``{"status": "ok", "database": "ok", "broker": "ok"}`` (503 when
  failing).
* ``GET /metrics``: Prometheus' text format (``shared.metrics``); a relay's
  request lasts as long as its console session, and is timed so.

A token is read from the ``token`` query parameter only (never a cookie, which
a browser would send on a request another site makes). A websocket whose
``Origin`` is not the proxy's own is 403 before its token is looked at (see
``origin``). Every response forbids framing (``X-Frame-Options: DENY``,
``frame-ancestors 'none'``) and carries a Content-Security-Policy: the console
page's allows its own script and style and its websocket (see ``page``), any
other's allows nothing.

A missing, unknown, expired or used token is 401 with a message saying which,
and no connection to the guest is made. A relay request that is not a
websocket upgrade is 400 (401 if its token is not usable) and leaves the token
unspent. Once spent, and before connecting, the server's compute agent
confirms that the token still points at the server's console (see
``validate``): a server deleted, stopped or moved since is 401, an agent that
does not answer 503. A guest that cannot be reached is 502. In these three
cases the token is spent: the user asks for a new URL, as with Nova.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import signal
import weakref

import asyncpg
import structlog
from aiohttp import WSMsgType, web

from services.consoleproxy import origin, tokens
from services.consoleproxy.page import (
    DEFAULT_POLICY,
    console_page,
    page_policy,
    refusal_page,
)
from services.consoleproxy.settings import Settings
from services.consoleproxy.validate import (
    ConsoleGone,
    ConsoleUnreachable,
    Validator,
    agent_validator,
)
from shared.contracts.compute import ComputeClient
from shared.db import console_tokens
from shared.db.console_tokens import ConsoleTarget
from shared.db.migrate import apply_migrations
from shared.db.pool import create_pool
from shared.health import (
    Check,
    broker_check,
    database_check,
    health_handler,
    start_health_server,
)
from shared.leader import Leadership
from shared.metrics import http_metrics_mw, metrics_handler
from shared.rpc import RpcClient, connect

log = structlog.get_logger(__name__)

SERVICE = "consoleproxy"

POOL = web.AppKey("pool", asyncpg.Pool)
SETTINGS = web.AppKey("settings", Settings)
SOCKETS = web.AppKey("sockets", weakref.WeakSet)
VALIDATE = web.AppKey("validate", Validator)

_CHUNK = 64 * 1024


async def _allow_all(target: ConsoleTarget) -> None:
    return None


def create_app(settings: Settings, pool: asyncpg.Pool, *, validate: Validator | None = None,
               checks: dict[str, Check] | None = None) -> web.Application:
    """The proxy's app. ``validate`` confirms a spent token's console before the
    relay (``run`` asks the compute agents; None skips it, for tests);
    ``checks`` are the health checks beyond the database's."""
    app = web.Application(middlewares=[http_metrics_mw(SERVICE)])
    app[SETTINGS] = settings
    app[POOL] = pool
    app[SOCKETS] = weakref.WeakSet()
    app[VALIDATE] = validate or _allow_all
    app.router.add_get("/healthz", health_handler({"database": database_check(pool),
                                                   **(checks or {})}, service=SERVICE))
    app.router.add_get("/metrics", metrics_handler())
    app.router.add_get("/vnc_auto.html", novnc_page)
    app.router.add_get("/vnc.html", novnc_page)
    app.router.add_get("/websockify", novnc_relay)
    app.router.add_get("/console", xvpvnc_relay)
    app.on_response_prepare.append(_security_headers)
    app.on_shutdown.append(_close_sockets)
    return app


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    # Every response, refusals and errors included: none of them is to be framed
    # (clickjacking a console), sniffed as another type, or leak its URL, which
    # may hold a token, as a Referer.
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("Content-Security-Policy", DEFAULT_POLICY)


async def _close_sockets(app: web.Application) -> None:
    for ws in list(app[SOCKETS]):
        await ws.close(message=b"The console proxy is shutting down.")


async def novnc_page(request: web.Request) -> web.Response:
    try:
        token = tokens.token_of(request)
        await tokens.check(request.app[POOL], token, "novnc")
    except tokens.TokenRefused as exc:
        return web.Response(status=exc.status, text=refusal_page(exc.message),
                            content_type="text/html")
    title = request.query.get("title") or "Console"
    public = request.app[SETTINGS].consoleproxy.public_url
    path = "websockify?" + request.query_string  # the token travels as it came
    return web.Response(
        text=console_page(title=title, path=path, base=origin.websocket_base(public)),
        content_type="text/html",
        headers={"Cache-Control": "no-store",
                 "Content-Security-Policy": page_policy(origin.websocket_source(public))})


async def novnc_relay(request: web.Request) -> web.StreamResponse:
    return await _relay(request, "novnc")


async def xvpvnc_relay(request: web.Request) -> web.StreamResponse:
    return await _relay(request, "xvpvnc")


async def _relay(request: web.Request, console_type: str) -> web.StreamResponse:
    settings = request.app[SETTINGS].consoleproxy
    if not origin.websocket_allowed(request, settings.public_url):
        log.info("consoleproxy.refused", reason="foreign origin", type=console_type,
                 origin=request.headers.get("Origin"))
        return web.Response(status=403, text="This console cannot be opened from "
                                             "another site's page.\n")
    ws = web.WebSocketResponse(protocols=("binary", "base64"), heartbeat=30.0)
    try:
        token = tokens.token_of(request)
        if not ws.can_prepare(request).ok:
            # Checked before the token is spent: a plain GET must not burn it (but
            # it is told what is wrong with the token, if anything).
            await tokens.check(request.app[POOL], token, console_type)
            return web.Response(status=400, text="Connect to this URL with a websocket.\n")
        target = await tokens.spend(request.app[POOL], token, console_type)
    except tokens.TokenRefused as exc:
        log.info("consoleproxy.refused", reason=exc.message, type=console_type)
        return web.Response(status=exc.status, text=exc.message + "\n")
    try:
        await request.app[VALIDATE](target)
    except (ConsoleGone, ConsoleUnreachable) as exc:
        log.info("consoleproxy.refused", server_id=str(target.server_id), reason=str(exc),
                 type=console_type)
        return web.Response(status=exc.status, text=f"{exc}\n")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port), settings.connect_timeout_s)
    except (TimeoutError, OSError) as exc:
        log.warning("consoleproxy.guest_unreachable", server_id=str(target.server_id),
                    error=f"{type(exc).__name__}: {exc}")
        return web.Response(status=502, text=f"The console of server {target.server_id} "
                                             "cannot be reached.\n")
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    log.info("consoleproxy.connected", server_id=str(target.server_id), type=console_type,
             protocol=ws.ws_protocol)
    try:
        await _pump(ws, reader, writer, target)
    finally:
        writer.close()
        await ws.close()
        log.info("consoleproxy.disconnected", server_id=str(target.server_id))
    return ws


async def _pump(ws: web.WebSocketResponse, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter, target: ConsoleTarget) -> None:
    """Relay both ways until either side closes."""
    as_text = ws.ws_protocol == "base64"

    async def guest_to_browser() -> None:
        while data := await reader.read(_CHUNK):
            if as_text:
                await ws.send_str(base64.b64encode(data).decode())
            else:
                await ws.send_bytes(data)

    async def browser_to_guest() -> None:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                writer.write(msg.data)
            elif msg.type == WSMsgType.TEXT:
                try:
                    writer.write(base64.b64decode(msg.data) if as_text else msg.data.encode())
                except (binascii.Error, ValueError):
                    log.info("consoleproxy.bad_frame", server_id=str(target.server_id))
                    return
            else:  # close or error
                return
            await writer.drain()

    tasks = [asyncio.create_task(guest_to_browser()), asyncio.create_task(browser_to_guest())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _purge(pool: asyncpg.Pool, settings: Settings, stop: asyncio.Event) -> None:
    """Every proxy process runs this loop; the leader of ``console-token-purge`` purges."""
    leader = Leadership(pool, "console-token-purge")
    while not stop.is_set():
        try:
            if await leader.check():
                async with pool.acquire() as conn:
                    gone = await console_tokens.purge(conn, settings.consoleproxy.purge_after_s)
                if gone:
                    log.info("consoleproxy.tokens_purged", count=gone)
        except Exception:
            log.exception("consoleproxy.purge_failed")
        try:
            await asyncio.wait_for(stop.wait(), settings.consoleproxy.purge_interval_s)
        except TimeoutError:
            pass
    await leader.resign()


async def run(settings: Settings) -> None:
    await apply_migrations(settings.database.url)
    pool = await create_pool(settings.database)
    connection = await connect(settings.amqp.url)
    rpc = RpcClient(connection, timeout=settings.amqp.rpc_timeout_s)
    await rpc.start()
    validate = agent_validator(pool, ComputeClient(rpc, request_id=None),
                               timeout_s=settings.consoleproxy.validate_timeout_s)
    app = create_app(settings, pool, validate=validate,
                     checks={"broker": broker_check(connection)})
    # Open consoles are closed at shutdown (a relay cannot move to another proxy);
    # other requests in flight get the grace.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=settings.shutdown.grace_s)
    await runner.setup()
    c = settings.consoleproxy
    # Replicas may share the port (SO_REUSEPORT): console tokens are rows in
    # PostgreSQL, so any replica accepts any token.
    await web.TCPSite(runner, c.host, c.port, reuse_port=True).start()
    own_health = await start_health_server(
        settings.health, {"database": database_check(pool), "broker": broker_check(connection)},
        service="consoleproxy")
    log.info("consoleproxy.started", listen=f"{c.host}:{c.port}", public_url=c.public_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    purge = asyncio.create_task(_purge(pool, settings, stop))
    await stop.wait()
    log.info("consoleproxy.stopping")
    await purge
    await runner.cleanup()
    if own_health is not None:
        await own_health.cleanup()
    await rpc.close()
    await connection.close()
    await pool.close()
