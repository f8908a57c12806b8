"""Which representation a request asks for, and routes that take a format suffix.

Section 3.4 of the spec: the response format comes from a ``.json``/``.xml``
suffix on the URI, else from ``Accept``, else JSON; the suffix wins over
``Accept``.

Routing: ``route()`` registers ``path`` with an optional suffix variable
``{fmt:(?:\\.json|\\.xml)?}`` appended. For the suffix to be seen, the path
variables before it must not swallow it, so every variable without an explicit
regex gets aiohttp's default character class made non-greedy,
``[^{}/]+?``. With a full-match regex that means a value is as short as
possible: ``/servers/abc.xml`` gives ``server_id="abc"`` and format xml, while
dotted values such as metadata keys (``com.hp__1__os_distro``) or image names
stay whole. The one thing that cannot be addressed is a value that itself ends
in ``.json`` or ``.xml`` (a metadata key ``a.xml``): the suffix is taken as
the format, as Nova did. Variables given an explicit regex are left alone.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from aiohttp import hdrs, web
from aiohttp.abc import AbstractView
from aiohttp.typedefs import Handler

Fmt = Literal["json", "xml"]

FMT_VAR = "fmt"
_SUFFIX = "{" + FMT_VAR + r":(?:\.json|\.xml)?}"
_PLAIN_VAR = re.compile(r"\{([_a-zA-Z][_a-zA-Z0-9]*)\}")

JSON_MEDIA_TYPES = frozenset({"application/json", "application/vnd.openstack.compute+json"})
XML_MEDIA_TYPES = frozenset(
    {"application/xml", "text/xml", "application/vnd.openstack.compute+xml"}
)


def suffixed_path(path: str) -> str:
    """``path`` with non-greedy variables and the optional format suffix."""
    return _PLAIN_VAR.sub(r"{\1:[^{}/]+?}", path) + _SUFFIX


def route(
    router: web.UrlDispatcher,
    method: str,
    path: str,
    handler: Handler | type[AbstractView],
    *,
    name: str | None = None,
) -> web.AbstractRoute:
    """Register ``handler`` for ``path`` and for ``path.json`` / ``path.xml``.

    Routes are tried in registration order, so register literal paths
    (``/servers/detail``) before variable ones (``/servers/{server_id}``).
    """
    return router.add_route(method, suffixed_path(path), handler, name=name)


def negotiate(request: web.BaseRequest) -> Fmt:
    """The response format for ``request``: suffix, then Accept, then JSON.

    An Accept header naming neither JSON nor XML (``text/html`` alone) gets
    JSON rather than 406, as Nova did: a fault the client can read beats none.
    """
    match_info = getattr(request, "match_info", None)
    if match_info is not None and FMT_VAR in match_info:
        suffix = match_info[FMT_VAR]
    else:
        # No route matched (or one registered without route()): look at the path.
        path = request.path
        suffix = ".xml" if path.endswith(".xml") else ".json" if path.endswith(".json") else ""
    if suffix == ".xml":
        return "xml"
    if suffix == ".json":
        return "json"
    accept = request.headers.get(hdrs.ACCEPT)
    if not accept:
        return "json"
    return format_for_accept(accept)


@lru_cache(maxsize=256)
def format_for_accept(accept: str) -> Fmt:
    """The format an Accept header prefers (RFC 7231 5.3.2, best effort).

    Each format's quality is that of the most specific media range matching one
    of its media types; the higher quality wins, then the more specific match
    (``application/xml, */*`` is XML), then JSON.
    """
    ranges = _parse_accept(accept)
    json_q, json_spec = _quality(ranges, JSON_MEDIA_TYPES)
    xml_q, xml_spec = _quality(ranges, XML_MEDIA_TYPES)
    if xml_q > json_q or (xml_q == json_q and xml_q > 0 and xml_spec > json_spec):
        return "xml"
    return "json"


def _parse_accept(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        media_type, _, params = part.partition(";")
        media_type = media_type.strip().lower()
        if not media_type:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        ranges.append((media_type, quality))
    return ranges


def _quality(ranges: list[tuple[str, float]], offers: frozenset[str]) -> tuple[float, int]:
    best = (0.0, -1)
    for offer in offers:
        major = offer.partition("/")[0]
        specificity, quality = -1, 0.0
        for media_type, q in ranges:
            if media_type == offer:
                rank = 2
            elif media_type == f"{major}/*":
                rank = 1
            elif media_type == "*/*":
                rank = 0
            else:
                continue
            if rank > specificity:
                specificity, quality = rank, q
        if specificity >= 0 and (quality, specificity) > best:
            best = (quality, specificity)
    return best
