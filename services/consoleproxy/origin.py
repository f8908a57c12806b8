"""The proxy's public origin: which pages may open its websockets, and where the
console page sends its own.

A console websocket carries a guest's screen and keyboard, and browsers let
any page open a websocket to any host, sending the page's ``Origin``. So a
websocket whose ``Origin`` is not the proxy's own is refused (403) before its
token is even looked at: a page elsewhere that got hold of a console URL
cannot drive the console from a user's browser. A request without ``Origin``
is not from a browser page (novnc's command-line clients, websockify's) and
is let through: it still needs the token.

With ``public_url`` set, the proxy's origin is its scheme, host and port,
compared exactly (default ports filled in). Without it, the origin's host and
port must be the ``Host`` the request came in on, whatever the scheme, so that
a proxy terminating TLS in front keeps working; there the request's own URL is
the documented fallback, as for every link.
"""

from __future__ import annotations

from aiohttp import web
from yarl import URL

_DEFAULT_PORTS = {"http": 80, "https": 443}


def websocket_allowed(request: web.Request, public_url: str) -> bool:
    """Whether the request's ``Origin`` (if any) is the proxy's own."""
    header = request.headers.get("Origin")
    if header is None:
        return True
    origin = _origin(header)
    if origin is None:  # "null" (sandboxed frames, files) or garbage
        return False
    if public_url:
        return origin == _origin(public_url)
    scheme, host, port = origin
    try:
        here = URL(f"{scheme}://{request.host}")
    except ValueError:
        return False
    return (here.host, here.port) == (host, port)


def websocket_base(public_url: str) -> str:
    """The ``ws://``/``wss://`` URL, ending in ``/``, that the console page opens
    its websocket under; empty when no public URL is set (the page then uses
    the address it was loaded from)."""
    if not public_url:
        return ""
    url = URL(public_url.rstrip("/") + "/")
    return str(url.with_scheme("wss" if url.scheme == "https" else "ws"))


def websocket_source(public_url: str) -> str:
    """The Content-Security-Policy source the console page may connect to."""
    if not public_url:
        return "'self'"  # CSP 3: 'self' covers ws:/wss: of the page's own host and port
    return str(URL(websocket_base(public_url)).origin())


def _origin(text: str) -> tuple[str, str, int] | None:
    try:
        url = URL(text.strip())
    except ValueError:
        return None
    scheme = url.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not url.host:
        return None
    return scheme, url.host, url.explicit_port or _DEFAULT_PORTS[scheme]
