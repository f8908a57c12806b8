"""Fault bodies (section 3.11) and the middleware that renders every error.

``{"itemNotFound": {"code": 404, "message": "...", "details": "..."}}`` in JSON,
``<itemNotFound code="404" xmlns="http://docs.openstack.org/compute/api/v2">
<message>...</message><details>...</details></itemNotFound>`` in XML; ``details``
only when there are some. The format is the negotiated one; for a path no route
matched, its suffix and Accept decide.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import asyncpg

import msgspec
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
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


def fault_body_json(fault: Fault) -> bytes:
    """``fault``'s section 3.11 body in JSON (Cinder's faults have the same shape)."""
    return _fault_payload(fault.status, fault.name, fault.message, fault.details, "json")[0]


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


@dataclass(frozen=True)
class Fault:
    """An error on its way to the client, whatever raised it.

    ``error`` is the ``ComputeError`` raised, if one was (a renderer may read its
    class); ``name`` is its section 3.11 fault element.
    """

    status: int
    name: str
    message: str
    details: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    error: ComputeError | None = None

    @classmethod
    def of(cls, exc: ComputeError, extra_headers: Mapping[str, str] | None = None) -> Fault:
        return cls(exc.http_status, exc.fault_name, exc.message, exc.details,
                   {**exc.headers, **(extra_headers or {})}, exc)


FaultRenderer = Callable[[web.Request, Fault], web.Response]


def fault_middleware_for(render: FaultRenderer) -> Middleware:
    """A middleware that turns every error raised below into ``render``'s response.

    The one home of what becomes a fault: ``ComputeError``s as they are, aiohttp's
    HTTP errors by status, input PostgreSQL cannot hold as 400, an outage of the
    database or broker as 503, anything else as a 500 that tells nothing of its
    cause. The compute API renders section 3.11's bodies (``fault_middleware``);
    the image, network and block-storage endpoints render their own APIs' bodies.
    """

    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
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
            return render(request, Fault.of(exc))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise  # redirects and the like are responses, not faults
            return render(request, _http_fault(exc))
        except asyncio.CancelledError:
            raise
        except asyncpg.DataError as exc:
            # Input PostgreSQL cannot hold (a NUL character, an out-of-range number)
            # is the client's mistake, not ours.
            log.info("api.bad_input", error=type(exc).__name__, path=request.path)
            return render(request, Fault.of(BadRequest(
                "Invalid input: the request holds characters or values that cannot be stored.")))
        except Exception as exc:
            if is_transient(exc):
                # The database or broker is away (or too slow): nothing was done, and
                # trying again shortly may work. Never a 500, never its raw text.
                log.warning("api.unavailable", error=describe(exc), method=request.method,
                            path=request.path)
                return render(request, Fault.of(unavailable(exc)))
            log.exception("api.unhandled_error", method=request.method, path=request.path)
            return render(request, Fault.of(ComputeError(UNEXPECTED_MESSAGE)))

    return faults


def _compute_fault(request: web.Request, fault: Fault) -> web.Response:
    return _fault_response(fault.status, fault.name, fault.message, fault.details,
                           negotiate(request), fault.headers)


fault_middleware = fault_middleware_for(_compute_fault)
"""Render every error raised below as a fault in the negotiated format."""


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


def _http_fault(exc: web.HTTPException) -> Fault:
    """The fault for an aiohttp HTTP error (no route, bad method, body too big...)."""
    # Keep what the exception says beyond its own body (WWW-Authenticate, say).
    extra = {
        k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")
    }
    if isinstance(exc, web.HTTPMethodNotAllowed):
        extra["Allow"] = ", ".join(sorted(exc.allowed_methods))
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return Fault.of(OverLimit("Request body is too large.", details=exc.text))
    cls = _BY_STATUS.get(exc.status)
    if cls is not None:
        return Fault.of(cls(), extra)
    # A status no error class names (411, 414, 502...): keep the status.
    if exc.status < 500:
        return Fault(exc.status, "badRequest", exc.reason, None, extra)
    return Fault(exc.status, "computeFault", UNEXPECTED_MESSAGE, None, extra)


def _text(elem: etree._Element, text: str) -> None:
    # A message may echo what the client sent; what XML cannot hold (control
    # characters, U+FFFE, U+FFFF) is dropped, as the XML writer drops it.
    elem.text = xml_safe(text)
