"""Prometheus metrics: the one home of every ``nimbus_*`` family and how it is fed.

Every service serves ``GET /metrics`` in Prometheus' text format: the API on its
compute port (8774, no token, like ``/healthz``), each worker on its health port
(``NIMBUS_HEALTH_PORT``), the console proxy on its own port. The families:

* ``nimbus_http_requests_total`` / ``nimbus_http_request_duration_seconds``: API
  requests by app (compute, identity, image, network, block_storage,
  consoleproxy), route *template* (aiohttp's ``resource.canonical``:
  ``/v2/{project_id}/servers/{server_id}{fmt}``, never the raw path, so the label
  set stays bounded), method and status;
* ``nimbus_rpc_sent_total`` / ``nimbus_rpc_sent_duration_seconds``: calls and
  casts this process sent, by message type and outcome; ``nimbus_rpc_handled_*``
  the messages it handled; ``nimbus_rpc_retries_total`` and
  ``nimbus_rpc_dead_lettered_total`` what the shared delivery rules
  (``shared.rpc.server``) retried and dead-lettered;
* ``nimbus_operations_total`` / ``nimbus_operation_duration_seconds``: the
  compute agent's builds and actions by outcome (``services.compute_agent.runner``);
* ``nimbus_db_pool_*``: the database pool's connections and acquire waits;
* read at scrape time, on the API only (``shared.metrics_sources``): servers by
  status, compute hosts' heartbeat ages, RabbitMQ queue depths.

Each process has its own registry (prometheus-client's default, which also
carries the ``process_*`` and ``python_*`` families). Multiprocess mode is not
used: every service is one process today, each scraped on its own port. A
pre-forked API group sharing one port would need it (``PROMETHEUS_MULTIPROC_DIR``)
or one port per process.

Collectors are synchronous; values that need the database or the broker are
fetched by async *refreshers* the ``/metrics`` handler awaits (each bounded by
``REFRESH_TIMEOUT_S``) just before it renders.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec
import structlog
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)

Refresher = Callable[[], Awaitable[None]]
REFRESH_TIMEOUT_S = 2.0
"""The most a scrape waits for one refresher (a database query, the broker's
queue counts); past it the family keeps its last values and the failure counts."""

# An API request is milliseconds; a boot's operations are seconds to minutes.
_FAST = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)
_SLOW = (.1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

HTTP_REQUESTS = Counter("nimbus_http_requests", "API requests answered",
                        ["app", "route", "method", "status"])
HTTP_DURATION = Histogram("nimbus_http_request_duration_seconds",
                          "Time to answer an API request", ["app", "route", "method"],
                          buckets=_FAST)
RPC_SENT = Counter("nimbus_rpc_sent", "RPC calls and casts sent, by outcome (ok, "
                   "error: the handler failed, timeout, unavailable: the broker refused)",
                   ["kind", "message", "outcome"])
RPC_SENT_DURATION = Histogram("nimbus_rpc_sent_duration_seconds",
                              "Time from publish to confirm (cast) or reply (call)",
                              ["kind", "message"], buckets=_FAST)
RPC_HANDLED = Counter("nimbus_rpc_handled", "RPC messages handled, by outcome",
                      ["kind", "message", "outcome"])
RPC_HANDLED_DURATION = Histogram("nimbus_rpc_handled_duration_seconds",
                                 "Time to handle an RPC message, retries included",
                                 ["kind", "message"], buckets=_SLOW)
RPC_RETRIES = Counter("nimbus_rpc_retries", "Casts handled again after a transient failure",
                      ["message"])
RPC_DEAD_LETTERED = Counter("nimbus_rpc_dead_lettered", "Messages moved to a dead-letter "
                            "queue, by why (undecodable, permanent, gave_up)",
                            ["queue", "reason"])
OPERATIONS = Counter("nimbus_operations", "Compute agent operations (build, delete, reboot...) "
                     "by outcome", ["operation", "outcome"])
OPERATION_DURATION = Histogram("nimbus_operation_duration_seconds",
                               "Time a compute agent operation took, by outcome",
                               ["operation", "outcome"], buckets=_SLOW)
SCHEDULER_DECISION_CPU = Histogram(
    "nimbus_scheduler_decision_cpu_seconds",
    "CPU time a scheduler spent choosing a host for one build: filtering and weighing its "
    "view of the hosts (no I/O; the reads and the claim are counted apart, as statements)",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05))
POOL_ACQUIRE = Histogram("nimbus_db_pool_acquire_seconds",
                         "Time waited for a pooled database connection", buckets=_FAST)
POOL_ACQUIRE_FAILURES = Counter("nimbus_db_pool_acquire_failures",
                                "Pooled connections that could not be had (timeout, refused)")
REFRESH_FAILURES = Counter("nimbus_metrics_refresh_failures",
                           "Scrape-time reads that failed or timed out", ["source"])


def queue_kind(queue: str) -> str:
    """A queue name with its host dropped (``compute.node-1`` -> ``compute``), for labels
    of families that must not grow with the fleet."""
    return "compute" if queue.startswith("compute.") else queue


class _Tag(msgspec.Struct):
    type: str = "unknown"


_tag_decoder = msgspec.json.Decoder(_Tag)


def message_type(msg: Any) -> str:
    """The message's tag (``build_server``), its class name if it has none."""
    tag = getattr(type(msg), "__struct_config__", None)
    return tag.tag if tag is not None and isinstance(tag.tag, str) else type(msg).__name__


def message_type_of(body: bytes) -> str:
    """``message_type`` of an encoded message (the outbox keeps them so)."""
    try:
        return _tag_decoder.decode(body).type
    except msgspec.DecodeError:
        return "unknown"


# -- HTTP ---------------------------------------------------------------------------

def route_template(request: web.Request) -> str:
    """The route the request matched, as its template; ``unmatched`` for a 404 or 405
    of the router (whose raw paths are unbounded)."""
    try:
        resource = request.match_info.route.resource
    except AttributeError:
        resource = None
    return resource.canonical if resource is not None else "unmatched"


def http_metrics_mw(app: str) -> Callable[..., Any]:
    """Count and time every request of ``app`` (the outermost middleware, so it sees
    the status the client gets, faults rendered)."""

    @web.middleware
    async def http_metrics(request: web.Request, handler: Any) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            route, method = route_template(request), request.method
            HTTP_REQUESTS.labels(app, route, method, str(status)).inc()
            HTTP_DURATION.labels(app, route, method).observe(time.perf_counter() - started)

    return http_metrics


# -- the database pool ----------------------------------------------------------------

_pools: weakref.WeakSet[Any] = weakref.WeakSet()


def track_pool(pool: Any) -> None:
    """Report ``pool``'s connections (``nimbus_db_pool_connections``) while it lives."""
    _pools.add(pool)


class _PoolCollector(Collector):
    def collect(self) -> Iterable[GaugeMetricFamily]:
        conns = GaugeMetricFamily("nimbus_db_pool_connections",
                                  "Pooled database connections by state", labels=["state"])
        size = GaugeMetricFamily("nimbus_db_pool_max_connections",
                                 "The most connections the pools may open")
        open_, idle, most = 0, 0, 0
        for pool in list(_pools):
            if pool.is_closing():
                continue
            open_, idle = open_ + pool.get_size(), idle + pool.get_idle_size()
            most += pool.get_max_size()
        conns.add_metric(["in_use"], open_ - idle)
        conns.add_metric(["idle"], idle)
        size.add_metric([], most)
        yield conns
        yield size


REGISTRY.register(_PoolCollector())


# -- GET /metrics ---------------------------------------------------------------------

async def refresh(refreshers: dict[str, Refresher]) -> None:
    """Run every refresher at once, each bounded by ``REFRESH_TIMEOUT_S``; a failure
    is counted and logged, never raised (a scrape shows what it can)."""
    async def one(name: str, fn: Refresher) -> None:
        try:
            await asyncio.wait_for(fn(), REFRESH_TIMEOUT_S)
        except Exception as exc:  # a failing source is a counter, not a failed scrape
            REFRESH_FAILURES.labels(name).inc()
            log.warning("metrics.refresh_failed", source=name, error=type(exc).__name__)
    await asyncio.gather(*(one(name, fn) for name, fn in refreshers.items()))


def metrics_handler(refreshers: dict[str, Refresher] | None = None
                    ) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET /metrics``: this process's registry, after ``refreshers`` ran."""
    sources = dict(refreshers or {})

    async def metrics(_request: web.Request) -> web.Response:
        if sources:
            await refresh(sources)
        response = web.Response(body=generate_latest(REGISTRY))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    return metrics
