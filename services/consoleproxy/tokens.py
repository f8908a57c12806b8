"""Checking and spending console tokens, with the message a refused browser sees.

The SQL is in ``shared.db.console_tokens`` (the API issues what the proxy spends).
A token is read from the ``token`` query parameter (noVNC's way) and nowhere
else: a cookie (Nova's noVNC pages set one) would ride along on requests that
other sites' pages make, and the console URL already carries the token.
"""

from __future__ import annotations

import asyncpg
from aiohttp import web

from shared.db import console_tokens
from shared.db.console_tokens import ConsoleTarget

# Tokens we issue are UUIDs; anything much longer is not ours (and not hashed).
MAX_TOKEN_LENGTH = 128

_REASONS = {
    "unknown": "The console token is not valid.",
    "used": "The console token has already been used; ask for a new console URL.",
    "expired": "The console token has expired; ask for a new console URL.",
    "other_type": "The console token is for another type of console.",
}


class TokenRefused(Exception):
    """No console for this request: 401 with a message saying why."""

    status = 401

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def token_of(request: web.Request) -> str:
    token = request.query.get("token", "")
    if not token:
        raise TokenRefused("This console URL has no token.")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRefused(_REASONS["unknown"])
    return token


async def check(pool: asyncpg.Pool, token: str, console_type: str) -> ConsoleTarget:
    """The target of a token that may still be used (it is not spent)."""
    async with pool.acquire() as conn:
        target = await console_tokens.peek(conn, token, console_type)
        if target is None:
            raise TokenRefused(_REASONS[await console_tokens.why_unusable(conn, token,
                                                                         console_type)])
    return target


async def spend(pool: asyncpg.Pool, token: str, console_type: str) -> ConsoleTarget:
    """Use the token up (atomically: one connection per token) and return its target."""
    async with pool.acquire() as conn:
        target = await console_tokens.consume(conn, token, console_type)
        if target is None:
            raise TokenRefused(_REASONS[await console_tokens.why_unusable(conn, token,
                                                                         console_type)])
    return target
