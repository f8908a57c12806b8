"""Decode request bodies, JSON or XML, into the same plain dict.

The media type comes from ``Content-Type`` (section 4.2: application/json or
application/xml; we also take text/xml and the vnd.openstack.compute types).
A body sent without ``Content-Type`` is sniffed: ``<`` is XML, ``{`` JSON.
Any other media type is a 415 badMediaType; a body that does not parse, is
empty, is not an object, or nests deeper than ``MAX_DEPTH`` is a 400
"Malformed request body".

Text in a body never holds a NUL character: PostgreSQL text and jsonb cannot
store one, and no field of this API needs one. Whichever field it is in, a key
or a value, the body is refused here (400 badRequest) before any handler
reads it, so no handler has to think of it and nothing is changed half-way.
XML cannot carry NUL at all (``&#0;`` does not parse), so in practice this is
JSON's ``\u0000``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import hdrs, web

from services.api.representation.formats import Fmt
from services.api.representation.xml_reader import parse_xml
from shared.errors import BadMediaType, BadRequest, MalformedBody

_JSON_DECODER = msgspec.json.Decoder()

MAX_DEPTH = 32
"""How deeply objects and lists may nest in a body, the root object counting one.
The deepest body this API reads nests four levels (``server`` > ``networks`` >
an item > its fields); without a bound, a few thousand brackets exhaust the
decoder's recursion (XML's parser stops at 256 levels by itself)."""

NUL_MESSAGE = "Invalid input: text in the request body must not hold a NUL character (\\u0000)."


def body_format(content_type: str | None, data: bytes) -> Fmt:
    """Which decoder a body with this ``Content-Type`` header value needs."""
    if content_type is None or not content_type.strip():
        first = data.lstrip()[:1]
        if first == b"<":
            return "xml"
        if first in (b"{", b"["):
            return "json"
        raise MalformedBody()
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        return "json"
    if media_type in ("application/xml", "text/xml") or media_type.endswith("+xml"):
        return "xml"
    raise BadMediaType(f"Unsupported Content-Type: {media_type or content_type.strip()}")


def decode_body(data: bytes, content_type: str | None, root: str | None = None) -> dict[str, Any]:
    """Decode ``data`` by its ``Content-Type`` header value.

    Args:
        data: the raw request body.
        content_type: the header's value, or None when the request had none.
        root: the top-level key the operation expects (``"server"``); a body
            without it is malformed. None accepts any (server actions).
    """
    if not data.strip():
        if content_type is not None and content_type.strip():
            body_format(content_type, data)  # an unsupported type is still a 415
        raise MalformedBody()
    if body_format(content_type, data) == "json":
        try:
            body = _JSON_DECODER.decode(data)
        except msgspec.DecodeError as exc:
            raise MalformedBody(details=str(exc)) from None
        except RecursionError:
            raise MalformedBody(details=_TOO_DEEP) from None
        if not isinstance(body, dict):
            raise MalformedBody()
    else:
        body = parse_xml(data)
    check_tree(body)
    if root is not None and root not in body:
        raise MalformedBody()
    return body


_TOO_DEEP = f"Objects and lists nest more than {MAX_DEPTH} levels deep."


def check_tree(body: dict[str, Any]) -> None:
    """Refuse a decoded body that nests deeper than MAX_DEPTH or holds a NUL anywhere.

    Iterative, so that the check itself cannot run out of stack.
    """
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise BadRequest(NUL_MESSAGE)
            continue
        if isinstance(value, dict):
            items: Any = value.values()
            if any("\x00" in key for key in value):
                raise BadRequest(NUL_MESSAGE)
        elif isinstance(value, list):
            items = value
        else:
            continue
        if depth > MAX_DEPTH:
            raise MalformedBody(details=_TOO_DEEP)
        stack.extend((item, depth + 1) for item in items)


async def parse_body(request: web.Request, root: str | None = None) -> dict[str, Any]:
    """Read and decode the request's body (see ``decode_body``).

    A body over the app's ``client_max_size`` raises aiohttp's
    HTTPRequestEntityTooLarge, which ``fault_middleware`` turns into overLimit.
    """
    data = await request.read()
    return decode_body(data, request.headers.get(hdrs.CONTENT_TYPE), root)
