"""``GET /healthz`` for the workers: their documented health check (and their
``GET /metrics``, ``shared.metrics``, on the same port).

The API serves its own ``/healthz`` on its port; a worker (scheduler, network,
compute agent) serves one on ``[health] port`` (``NIMBUS_HEALTH_PORT``). Both
answer 200 with ``{"status": "ok", "database": "ok", "broker": "ok"}`` when
every check passes, 503 with the failing ones named otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import msgspec
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web

from shared.config import HealthSettings
from shared.metrics import metrics_handler

Check = Callable[[], Awaitable[bool]]


def database_check(pool: asyncpg.Pool) -> Check:
    async def check() -> bool:
        async with pool.acquire(timeout=2) as conn:
            return await conn.fetchval("SELECT 1") == 1
    return check


def broker_check(connection: AbstractRobustConnection) -> Check:
    async def check() -> bool:
        return not connection.is_closed
    return check


async def run_checks(checks: dict[str, Check]) -> tuple[bool, dict[str, str]]:
    report: dict[str, str] = {}
    for name, check in checks.items():
        try:
            ok = await asyncio.wait_for(check(), 3)
        except Exception as exc:  # a failing check is a report, not a crash
            ok, report[name] = False, f"error: {type(exc).__name__}"
        else:
            report[name] = "ok" if ok else "failing"
    healthy = all(v == "ok" for v in report.values())
    return healthy, {"status": "ok" if healthy else "failing", **report}


def health_handler(checks: dict[str, Check], **extra: object):
    """``extra`` values are reported as they are, or called first when callable (a
    backlog that changes: the outbox's, the messages being retried)."""
    async def healthz(_request: web.Request) -> web.Response:
        healthy, report = await run_checks(checks)
        info = {k: v() if callable(v) else v for k, v in extra.items()}
        return web.Response(body=msgspec.json.encode({**report, **info}),
                            status=200 if healthy else 503, content_type="application/json")
    return healthz


async def start_health_server(settings: HealthSettings, checks: dict[str, Check], *,
                              metrics=None, **extra: object) -> web.AppRunner | None:
    """Serve ``/healthz`` and ``/metrics`` on the configured port; None when the
    port is 0. ``metrics``: the ``/metrics`` handler, when the process's own (the
    API's, which refreshes the cloud-wide families) is not the plain one."""
    if not settings.port:
        return None
    app = web.Application()
    app.router.add_get("/healthz", health_handler(checks, **extra))
    app.router.add_get("/metrics", metrics or metrics_handler())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    return runner
