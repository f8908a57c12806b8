"""Paginated collections (spec section 3.6) and efficient polling (3.7), for every list.

A list handler reads the query with :func:`page_params`, hands ``limit``, the
marker and ``changes-since`` to its query module (which pages in SQL, keyset
style: ``WHERE (created_at, id) < (marker's) ORDER BY created_at DESC, id DESC
LIMIT n``), and adds :func:`next_links` to its body::

    page = page_params(request)
    rows = await q.list_page(conn, pid, page.limit, marker, page.changes_since)
    items = [views.brief(r, base, pid) for r in rows]
    return View({"servers": items, **next_links(request, "servers", "servers", items, page)})

Rules (the spec's, with Nova's behaviour where the spec says nothing):

* ``limit``: a whole number; above 1000 it is 1000 ("Setting limit to a
  value greater than 1000 has no effect"); 0 gives an empty page with no next
  link, as in Nova (whose database query took the limit as it was); a negative
  number is 400 "limit param must be positive" and anything else 400 "limit
  param must be an integer", Nova's words.
* ``marker``: the id of the last item of the previous page; one that names no
  item the caller can see is 400 badRequest ("A marker with an invalid ID will
  return a badRequest (400) fault"). An empty marker is no marker, as in Nova.
* ``changes-since``: an ISO 8601 date-time, ``CCYY-MM-DDThh:mm:ss`` with an
  optional zone (``Z``, ``+hh:mm``, ``-hh:mm``, and the spec's own
  ``Z+01:00``); without a zone it is UTC. Anything else is 400. With it,
  lists show the items whose ``updated_at`` is at or after that time,
  recently deleted ones included (status ``DELETED``); without it deleted
  items are never listed.
* A full page (as many items as the limit) carries ``<collection>_links`` with a
  ``next`` link, which repeats the request's query with the marker set to the
  page's last id, as Nova does; the XML writer renders it as ``atom:link``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import asyncpg
import msgspec
from aiohttp import web

from services.api.keys import POOL
from services.api.resources.common import (
    base_url,
    beyond_int,
    parse_digits,
    parse_uuid,
    principal,
)
from shared.errors import BadRequest

MAX_LIMIT = 1000
"""At most this many items a page (section 3.6)."""

# The spec writes a zone as "Z+01:00" (2011-01-24T17:08:00Z+01:00): the offset counts.
_Z_THEN_OFFSET = re.compile(r"Z(?=[+-]\d{2}(?::?\d{2})?$)")
# A "+" that a client did not escape in the query string arrives as a space.
_SPACE_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


class Page(msgspec.Struct, frozen=True):
    """What a list request asked for."""

    limit: int
    marker: str | None = None
    changes_since: datetime | None = None


def page_params(request: web.Request, *, polling: bool = True) -> Page:
    """``limit``, ``marker`` and (where ``polling``) ``changes-since`` of a list request."""
    query = request.query
    since = parse_changes_since(query.get("changes-since")) if polling else None
    return Page(limit=parse_limit(query.get("limit")), marker=parse_marker(query.get("marker")),
                changes_since=since)


def parse_limit(raw: str | None) -> int:
    """The page size: ``raw`` as a whole number, at most MAX_LIMIT; MAX_LIMIT if absent."""
    if raw is None:
        return MAX_LIMIT
    text = raw.strip()
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    value = None if beyond_int(raw) else parse_digits(digits, ceiling=MAX_LIMIT)
    if value is None or digits != digits.strip():
        raise BadRequest(f"limit param must be an integer: {raw[:40]!r}")
    if negative and value:
        raise BadRequest("limit param must be positive")
    return value


def parse_marker(raw: str | None) -> str | None:
    """The marker as given (its check is the query's: it must name a visible item)."""
    if raw is None or not raw.strip():
        return None
    return raw.strip()


def bad_marker(marker: str) -> BadRequest:
    """The fault for a marker that names nothing the caller can see (Nova's words)."""
    return BadRequest(f"marker [{marker}] not found")


def parse_changes_since(raw: str | None) -> datetime | None:
    """``changes-since`` as an aware datetime (UTC when no zone is given)."""
    if raw is None:
        return None
    text = _SPACE_OFFSET.sub(r"\1+\2", raw.strip())
    text = _Z_THEN_OFFSET.sub("", text)
    if not text or not text[:4].isdigit():
        raise BadRequest(f"Invalid changes-since value: {raw!r}")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"Invalid changes-since value: {raw!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when


def next_links(request: web.Request, collection: str, key: str, items: list[dict[str, Any]],
               page: Page) -> dict[str, list[dict[str, str]]]:
    """``{"<key>_links": [next]}`` when the page is full, else nothing.

    Args:
        collection: the path under ``/v2/{project_id}/`` the link points to
            (``servers/detail``); the format suffix is left out, as Nova did.
        key: the body's list key (``servers``).
        items: the page's views; the last one's ``id`` is the next marker.
    """
    if not items or len(items) < page.limit:
        return {}
    params = [(k, v) for k, v in request.query.items() if k != "marker"]
    params.append(("marker", str(items[-1]["id"])))
    href = (f"{base_url(request)}/v2/{principal(request).project_id}/{collection}"
            f"?{urlencode(params)}")
    return {f"{key}_links": [{"rel": "next", "href": href}]}


MarkerPosition = Callable[[asyncpg.Connection, str, UUID], Awaitable[Any]]
PageRows = Callable[[asyncpg.Connection, str, int, Any], Awaitable[list[Any]]]


async def project_page(request: web.Request, marker_position: MarkerPosition,
                       page_rows: PageRows) -> tuple[list[Any], Page]:
    """One page of a project's collection with no ``changes-since`` (volumes,
    snapshots): the marker found with ``marker_position`` (400 if the caller sees no
    such item), then ``page_rows(conn, project_id, limit, after)``."""
    pid = principal(request).project_id
    page = page_params(request, polling=False)
    async with request.app[POOL].acquire() as conn:
        after = None
        if page.marker is not None:
            marker_id = parse_uuid(page.marker)
            after = await marker_position(conn, pid, marker_id) if marker_id else None
            if after is None:
                raise bad_marker(page.marker)
        return await page_rows(conn, pid, page.limit, after), page
