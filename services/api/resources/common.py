"""What every resource handler needs: the caller, the base URL, id and number parsing,
the server a path names."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from aiohttp import web

from services.api.identity import Principal
from services.api.keys import POOL, SETTINGS
from services.api.queries import servers as server_q
from shared.db import hosts
from shared.db.hosts import HostState
from shared.errors import Forbidden, ServerNotFound


def principal(request: web.Request) -> Principal:
    return request["principal"]


def require_admin(request: web.Request, action: str) -> None:
    """Refuse a caller without the admin role, as Nova's ``rule:admin_api`` policies did:
    403 with Nova's PolicyNotAuthorized message naming the policy (``action``)."""
    if not principal(request).is_admin:
        raise Forbidden(f"Policy doesn't allow {action} to be performed.")


async def compute_hosts(request: web.Request, conn: Any) -> list[HostState]:
    """Every compute host, with ``alive`` judged by the API's ``service_down_time_s``
    (the one measure the availability zones, services and hypervisors share)."""
    return await hosts.all_hosts(conn, request.app[SETTINGS].api.service_down_time_s)


def base_url(request: web.Request) -> str:
    configured = request.app[SETTINGS].api.public_url
    return configured.rstrip("/") if configured else str(request.url.origin())


async def load_server(request: web.Request) -> Any:
    """The caller's live server that ``{server_id}`` in the path names; 404
    itemNotFound for anything else (another project's, deleted, not a UUID)."""
    raw = request.match_info["server_id"]
    sid = parse_uuid(raw)
    row = None
    if sid is not None:
        async with request.app[POOL].acquire() as conn:
            row = await server_q.get(conn, principal(request).project_id, sid)
    if row is None:
        raise ServerNotFound(raw)
    return row


def parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


_DIGITS = re.compile(r"[0-9]+")


def parse_digits(text: str, *, ceiling: int) -> int | None:
    """The whole number ``text`` writes in ASCII digits (blanks around it allowed),
    or None when it is anything else; any number above ``ceiling`` reads as ``ceiling``.

    Callers that refuse large numbers pass a ceiling one above their largest.
    The digits never reach ``int()`` when there are more than the ceiling has:
    past 4,300 digits ``int()`` raises ValueError (CPython's guard against
    quadratic conversion), which would answer 500 to a long digit string.
    """
    stripped = text.strip()
    if not _DIGITS.fullmatch(stripped):
        return None
    significant = stripped.lstrip("0") or "0"
    if len(significant) > len(str(ceiling)):
        return ceiling
    return min(int(significant), ceiling)


INT_MAX_DIGITS = 4300
"""CPython's default ``sys.get_int_max_str_digits()``: ``int()`` refuses longer."""


def beyond_int(text: str) -> bool:
    """Whether ``text`` holds a number with more digits than ``int()`` converts. Nova
    parsed query numbers with ``int()``, which on today's Python answers those
    with its "must be an integer" 400; lists refuse them so too."""
    return len(text.strip().lstrip("+-").lstrip("0")) > INT_MAX_DIGITS


def ref_id(ref: object) -> str:
    """The id in an ``imageRef``/``flavorRef``: a bare id or a link ending with it."""
    text = str(ref).strip()
    return text.rstrip("/").rsplit("/", 1)[-1] if "/" in text else text
