"""structlog set-up: JSON lines on stdout, with the request id bound per task.

``X-Compute-Request-Id`` travels with every RPC (see ``shared.rpc``) and is bound
with :func:`bind_request_id`, so every log line of every service that worked on one
request carries the same ``request_id``. The binding is for logs only: code that
needs the request id (to name an instance action) is handed it explicitly.
"""

from __future__ import annotations

import logging
import sys
import uuid

import structlog


def configure(service: str, level: str = "info") -> None:
    """Send JSON lines to stdout, each tagged with ``service``."""
    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        lvl = logging.INFO
    logging.basicConfig(stream=sys.stdout, level=lvl, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_service(service),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )


def _add_service(service: str):
    def processor(_logger, _name, event_dict):
        event_dict.setdefault("service", service)
        return event_dict
    return processor


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


def bind_request_id(request_id: str | None) -> None:
    """Bind ``request_id`` to this task's log lines (clears any earlier binding)."""
    structlog.contextvars.clear_contextvars()
    if request_id:
        structlog.contextvars.bind_contextvars(request_id=request_id)

