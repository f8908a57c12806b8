"""Fault bodies (section 3.11) and the middleware that renders every error.

``{"itemNotFound": {"code": 404, "message": "...", "details": "..."}}`` in JSON,
``<itemNotFound code="404" xmlns="http://docs.openstack.org/compute/api/v2">
<message>...</message><details>...</details></itemNotFound>`` in XML; ``details``
only when there are some. The format is the negotiated one; for a path no route
matched, its suffix and Accept decide.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import asyncpg

import msgspec
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from lxml import etree

from services.api.representation.formats import Fmt, negotiate
from services.api.representation.responses import JSON_CONTENT_TYPE, XML_CONTENT_TYPE
from services.api.representation.xml_rules import XMLNS_V2
from services.api.representation.xml_writer import xml_safe
from shared.retry import describe, is_transient, unavailable
from shared.errors import (
    BadMediaType,
    BadMethod,
    BadRequest,
    ComputeError,
    Conflict,
    Forbidden,
    NotFound,
    NotImplementedFault,
    OverLimit,
    ServiceUnavailable,
    Unauthorized,
)

log = structlog.get_logger("nimbus.api.faults")

_JSON_ENCODER = msgspec.json.Encoder()
_MESSAGE = f"{{{XMLNS_V2}}}message"
_DETAILS = f"{{{XMLNS_V2}}}details"

UNEXPECTED_MESSAGE = (
    "The server has either erred or is incapable of performing the requested operation."
)


def fault_body(exc: ComputeError, fmt: Fmt) -> tuple[bytes, str]:
    """The serialized fault body for ``exc`` and its Content-Type."""
    return _fault_payload(exc.http_status, exc.fault_name, exc.message, exc.details, fmt)


def render_fault(
    exc: ComputeError, fmt: Fmt, *, extra_headers: Mapping[str, str] | None = None
) -> web.Response:
    """The HTTP response for ``exc``: its status, fault body and headers."""
    return _fault_response(
        exc.http_status, exc.fault_name, exc.message, exc.details, fmt,
        {**exc.headers, **(extra_headers or {})},
    )


def _fault_payload(
    status: int, name: str, message: str, details: str | None, fmt: Fmt
) -> tuple[bytes, str]:
    if fmt == "xml":
        root = etree.Element(f"{{{XMLNS_V2}}}{name}", nsmap={None: XMLNS_V2})
        root.set("code", str(status))
        _text(etree.SubElement(root, _MESSAGE), message)
        if details is not None:
            _text(etree.SubElement(root, _DETAILS), details)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8"), XML_CONTENT_TYPE
    fault: dict[str, object] = {"code": status, "message": message}
    if details is not None:
        fault["details"] = details
    return _JSON_ENCODER.encode({name: fault}), JSON_CONTENT_TYPE


def _fault_response(
    status: int,
    name: str,
    message: str,
    details: str | None,
    fmt: Fmt,
    headers: Mapping[str, str],
) -> web.Response:
    payload, content_type = _fault_payload(status, name, message, details, fmt)
    return web.Response(
        status=status, body=payload, headers={**headers, "Content-Type": content_type}
    )


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every error raised below as a fault in the negotiated format."""
    try:
        return await handler(request)
    except ComputeError as exc:
        if exc.http_status >= 500:
            log.warning(
                "api.fault",
                fault=exc.fault_name,
                status=exc.http_status,
                error=type(exc).__name__,
                method=request.method,
                path=request.path,
            )
        return render_fault(exc, negotiate(request))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are responses, not faults
        return _http_fault(exc, negotiate(request))
    except asyncio.CancelledError:
        raise
    except asyncpg.DataError as exc:
        # Input PostgreSQL cannot hold (a NUL character, an out-of-range number)
        # is the client's mistake, not ours.
        log.info("api.bad_input", error=type(exc).__name__, path=request.path)
        return render_fault(BadRequest("Invalid input: the request holds characters or "
                                       "values that cannot be stored."), negotiate(request))
    except Exception as exc:
        if is_transient(exc):
            # The database or broker is away (or too slow): nothing was done, and
            # trying again shortly may work. Never a 500, never its raw text.
            log.warning("api.unavailable", error=describe(exc), method=request.method,
                        path=request.path)
            return render_fault(unavailable(exc), negotiate(request))
        log.exception("api.unhandled_error", method=request.method, path=request.path)
        return render_fault(ComputeError(UNEXPECTED_MESSAGE), negotiate(request))


_BY_STATUS: Mapping[int, type[ComputeError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: BadMethod,
    409: Conflict,
    413: OverLimit,
    415: BadMediaType,
    429: OverLimit,
    501: NotImplementedFault,
    503: ServiceUnavailable,
}


def _http_fault(exc: web.HTTPException, fmt: Fmt) -> web.Response:
    """The fault for an aiohttp HTTP error (no route, bad method, body too big...)."""
    # Keep what the exception says beyond its own body (WWW-Authenticate, say).
    extra = {
        k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")
    }
    if isinstance(exc, web.HTTPMethodNotAllowed):
        extra["Allow"] = ", ".join(sorted(exc.allowed_methods))
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        fault: ComputeError = OverLimit("Request body is too large.", details=exc.text)
        return render_fault(fault, fmt)
    cls = _BY_STATUS.get(exc.status)
    if cls is not None:
        return render_fault(cls(), fmt, extra_headers=extra)
    # A status no error class names (411, 414, 502...): keep the status.
    if exc.status < 500:
        return _fault_response(exc.status, "badRequest", exc.reason, None, fmt, extra)
    return _fault_response(exc.status, "computeFault", UNEXPECTED_MESSAGE, None, fmt, extra)


def _text(elem: etree._Element, text: str) -> None:
    # A message may echo what the client sent; what XML cannot hold (control
    # characters, U+FFFE, U+FFFF) is dropped, as the XML writer drops it.
    elem.text = xml_safe(text)
