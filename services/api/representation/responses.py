"""What handlers return, and how it becomes an HTTP response.

A handler decorated with ``@represented`` returns a ``View`` holding the body
as JSON would have it (plain dicts, lists and scalars; UUIDs, datetimes and
msgspec structs are fine too) or raises a ``ComputeError``. The decorator picks
the format with ``negotiate`` and renders; the handler never knows which.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from services.api.representation.formats import Fmt, negotiate
from services.api.representation.xml_writer import render_xml

JSON_CONTENT_TYPE = "application/json"
XML_CONTENT_TYPE = "application/xml; charset=UTF-8"

_JSON_ENCODER = msgspec.json.Encoder()


class View(msgspec.Struct, frozen=True):
    """A response as a handler sees it.

    Attributes:
        body: the JSON-shaped body; None for an empty body (202/204 replies).
        status: HTTP status.
        headers: extra headers (``Location`` on creates, say).
        shape: a hint for bodies whose shape the XML writer cannot see from
            their keys: ``NETWORK_ADDRESSES``, or ``BLOCK_STORAGE`` (a body
            of the block storage API's, in its namespace).
    """

    body: Any = None
    status: int = 200
    headers: dict[str, str] | None = None
    shape: str | None = None


def render(view_body: Any, fmt: Fmt, *, shape: str | None = None) -> tuple[bytes, str]:
    """Serialize a body; returns the bytes and their Content-Type."""
    if fmt == "xml":
        return render_xml(view_body, shape=shape), XML_CONTENT_TYPE
    return _JSON_ENCODER.encode(view_body), JSON_CONTENT_TYPE


def respond(view: View, fmt: Fmt) -> web.Response:
    """The aiohttp response for ``view`` in ``fmt``."""
    headers = dict(view.headers) if view.headers else {}
    if view.body is None or view.status == 204:
        return web.Response(status=view.status, headers=headers)
    payload, content_type = render(view.body, fmt, shape=view.shape)
    if not payload:  # an empty object has no XML root element
        return web.Response(status=view.status, headers=headers)
    headers["Content-Type"] = content_type
    return web.Response(body=payload, status=view.status, headers=headers)


Handler = Callable[[web.Request], Awaitable[View | web.StreamResponse]]


def represented(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Turn ``async def handler(request) -> View`` into an aiohttp handler.

    A handler may still return a ready ``web.StreamResponse``; it is passed on.
    Errors are left to ``fault_middleware``, which renders them in the same
    negotiated format.
    """

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        result = await handler(request)
        if isinstance(result, web.StreamResponse):
            return result
        return respond(result, negotiate(request))

    return wrapper
