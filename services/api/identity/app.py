"""The identity application: version discovery, v2.0 and v3 routes, Keystone-style
errors, a background purge of expired tokens, and the login throttle and
password gate that every password login passes (state of the app, not of the
module, so that each app, and each test's, has its own).

The caller owns the database pool (the API process shares one pool between the
compute and identity sites) and runs this app on its own site, port 5000 by
default. The purge task lives in the app's ``cleanup_ctx``, so it starts and
stops with the app's runner.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import structlog
from aiohttp import web

from services.api.identity import routes_v2, routes_v3, tokens, views
from services.api.identity.context import (GATE, POOL, SETTINGS, THROTTLE, TRUSTED_PROXIES,
                                           json_response, settings)
from services.api.identity.errors import IdentityError
from services.api.identity.password_gate import PasswordGate
from services.api.identity.settings import IdentitySettings, trusted_networks
from services.api.identity.throttle import LoginThrottle
from shared.leader import Leadership
from shared.logging import bind_request_id, new_request_id
from shared.metrics import http_metrics_mw
from shared.retry import describe, is_transient, unavailable

log = structlog.get_logger(__name__)

# Token requests are a few hundred bytes; nothing here takes a large body.
CLIENT_MAX_SIZE = 64 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_MESSAGES = {
    404: "Could not find the requested resource.",
    405: "The method is not allowed for the requested URL.",
}

versions = web.RouteTableDef()


@versions.get("/")
async def list_versions(request: web.Request) -> web.Response:
    # Keystone answers 300 Multiple Choices here; keystoneauth reads the body.
    return json_response(views.versions(settings(request)), status=300)


@versions.get("/v3")
@versions.get("/v3/")
async def show_v3(request: web.Request) -> web.Response:
    return json_response({"version": views.version_v3(settings(request))})


@versions.get("/v2.0")
@versions.get("/v2.0/")
async def show_v2(request: web.Request) -> web.Response:
    return json_response({"version": views.version_v2(settings(request))})


def error_response(cfg: IdentitySettings, code: int, title: str, message: str,
                   headers: dict[str, str] | None = None) -> web.Response:
    """Keystone's error body; a 401 also names where to authenticate."""
    headers = dict(headers or {})
    if code == 401:
        headers["WWW-Authenticate"] = f'Keystone uri="{cfg.public_url.rstrip("/")}"'
    return json_response({"error": {"code": code, "title": title, "message": message}},
                         status=code, headers=headers)


@web.middleware
async def request_id_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = new_request_id()
    bind_request_id(rid)
    response = await handler(request)
    response.headers["x-openstack-request-id"] = rid
    return response


@web.middleware
async def error_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except IdentityError as exc:
        headers = ({} if exc.retry_after_s is None
                   else {"Retry-After": str(exc.retry_after_s)})
        return error_response(settings(request), exc.code, exc.title, exc.message, headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = _HTTP_MESSAGES.get(exc.status) or exc.text or exc.reason
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(settings(request), exc.status, exc.reason, message, headers)
    except asyncpg.DataError:
        # A NUL character or the like in a name: bad input, not a server error.
        return error_response(settings(request), 400, "Bad Request",
                              "The request holds characters that cannot be stored.")
    except Exception as exc:
        if is_transient(exc):
            # The database is away or too slow: nothing was done; try again shortly.
            log.warning("identity.unavailable", error=describe(exc), path=request.path)
            fault = unavailable(exc)
            return error_response(settings(request), 503, "Service Unavailable", fault.message,
                                  fault.headers)
        log.exception("identity.unexpected_error", method=request.method, path=request.path)
        return error_response(settings(request), 500, IdentityError.title,
                              IdentityError.default_message)


async def _purge_loop(pool: asyncpg.Pool, interval_s: float) -> None:
    """Every API process runs this loop; the leader of ``token-purge`` purges."""
    leader = Leadership(pool, "token-purge")
    try:
        while True:
            try:
                if await leader.check():
                    purged = await tokens.purge_expired_tokens(pool)
                    if purged:
                        log.info("identity.tokens_purged", count=purged)
            except Exception as exc:
                # The database may be briefly away; the next round tries again.
                if is_transient(exc):
                    log.warning("identity.token_purge_failed", error=describe(exc))
                else:
                    log.exception("identity.token_purge_failed")
            await asyncio.sleep(interval_s)
    finally:
        await leader.resign()


async def token_purge_ctx(app: web.Application) -> AsyncIterator[None]:
    """Delete expired token rows every ``token_purge_interval_s`` while the app runs."""
    interval = app[SETTINGS].token_purge_interval_s
    task = asyncio.create_task(_purge_loop(app[POOL], interval)) if interval > 0 else None
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_identity_app(pool: asyncpg.Pool, settings: IdentitySettings) -> web.Application:
    """The Keystone-compatible identity app on ``pool`` (owned by the caller, which
    must keep it open until this app's runner is cleaned up)."""
    app = web.Application(client_max_size=CLIENT_MAX_SIZE,
                          middlewares=[http_metrics_mw("identity"), request_id_mw, error_mw])
    app[POOL] = pool
    app[SETTINGS] = settings
    app[THROTTLE] = LoginThrottle(settings)
    app[GATE] = PasswordGate(threads=settings.password_check_threads,
                             queue=settings.password_check_queue)
    app[TRUSTED_PROXIES] = trusted_networks(settings.trusted_proxies)
    app.add_routes(versions)
    app.add_routes(routes_v2.routes)
    app.add_routes(routes_v3.routes)
    app.cleanup_ctx.append(token_purge_ctx)
    app.on_cleanup.append(_close_gate)
    return app


async def _close_gate(app: web.Application) -> None:
    app[GATE].close()
