"""What every identity handler needs: the app's pool and settings, the decoded
request body, the caller's token, the guard of a password login, and a JSON
response."""

from __future__ import annotations

from typing import Any, TypeVar

import asyncpg
import msgspec
from aiohttp import web

from services.api.identity import tokens
from services.api.identity.auth import LoginGuard
from services.api.identity.client_address import Network, client_address
from services.api.identity.errors import BadRequest, Unauthorized
from services.api.identity.password_gate import PasswordGate
from services.api.identity.settings import IdentitySettings
from services.api.identity.throttle import LoginThrottle
from services.api.identity.tokens import TokenRecord

POOL = web.AppKey("identity_pool", asyncpg.Pool)
SETTINGS = web.AppKey("identity_settings", IdentitySettings)
THROTTLE = web.AppKey("identity_login_throttle", LoginThrottle)
GATE = web.AppKey("identity_password_gate", PasswordGate)
TRUSTED_PROXIES = web.AppKey("identity_trusted_proxies", tuple[Network, ...])

T = TypeVar("T")

_encode = msgspec.json.Encoder().encode


def pool(request: web.Request) -> asyncpg.Pool:
    return request.app[POOL]


def settings(request: web.Request) -> IdentitySettings:
    return request.app[SETTINGS]


async def decode_body(request: web.Request, decoder: msgspec.json.Decoder[T]) -> T:
    """The JSON body decoded by ``decoder``; 400 if it is not valid JSON of that
    shape. Size is bounded by the app's ``client_max_size`` (413 beyond)."""
    body = await request.read()
    if not body:
        raise BadRequest("The request you have made requires a body.")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"Invalid input: {exc}") from None
    except msgspec.DecodeError:
        raise BadRequest("Malformed request body: not valid JSON.") from None


def login_guard(request: web.Request) -> LoginGuard:
    """The throttle and password gate a password login on ``request`` goes through."""
    app = request.app
    return LoginGuard(throttle=app[THROTTLE], gate=app[GATE],
                      address=client_address(request, app[TRUSTED_PROXIES]))


async def caller(request: web.Request) -> TokenRecord:
    """The valid token in ``X-Auth-Token``; 401 if missing or not valid."""
    record = await tokens.lookup_token(pool(request), request.headers.get("X-Auth-Token"))
    if record is None:
        raise Unauthorized()
    return record


def json_response(data: Any, *, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=_encode(data), status=status, headers=headers,
                        content_type="application/json")
