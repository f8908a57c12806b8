"""The API process: the compute API (8774), identity (5000) and the image (9292),
network (9696) and block-storage (8776) endpoints, over one pool."""

from __future__ import annotations

import asyncio
import signal

import asyncpg
import structlog
from aiohttp import web

from services.api import cinder, glance, neutron
from services.api.identity import create_identity_app
from services.api.keys import POOL, RELAY, RPC, SETTINGS
from services.api.middleware import auth_mw, request_id_mw
from services.api.ratelimit import RATE_LIMITS, RateLimits, ratelimit_mw
from services.api.representation import fault_middleware
from services.api.resources import availability_zones, instance_actions
from services.api.resources import image_metadata, server_actions, server_metadata
from services.api.resources import extensions, flavors, images, limits, servers, versions
from services.api.resources import keypairs, security_group_rules, security_groups
from services.api.resources import floating_ips, server_ips, volume_attachments
from services.api.resources import volume_snapshots, volume_types, volumes
from services.api.resources import compute_services, hypervisors, nova_networks, quota_sets
from services.api.resources import aggregates, tenant_usage
from services.api.settings import Settings
from shared.db.migrate import apply_migrations
from shared.db.pool import create_pool
from shared.health import broker_check, database_check, health_handler, start_health_server
from shared.metrics import http_metrics_mw, metrics_handler
from shared.metrics_sources import database_refresher, queue_refresher
from shared.outbox import Relay
from shared.rpc import RpcClient, connect

log = structlog.get_logger(__name__)


def create_compute_app(settings: Settings, pool: asyncpg.Pool, rpc: RpcClient, relay: Relay,
                       health: web.Handler | None = None, metrics: web.Handler | None = None
                       ) -> web.Application:
    # Rate limits need the caller's project, so they come after auth; the metrics
    # come first, to see the status the client gets.
    app = web.Application(middlewares=[http_metrics_mw("compute"), request_id_mw,
                                       fault_middleware, auth_mw, ratelimit_mw],
                          client_max_size=settings.api.max_body_bytes)
    app[SETTINGS] = settings
    app[POOL] = pool
    app[RPC] = rpc
    app[RELAY] = relay
    app[RATE_LIMITS] = RateLimits()
    if health is not None:
        app.router.add_get("/healthz", health)
    if metrics is not None:
        app.router.add_get("/metrics", metrics)
    # Server actions are one route whose table is server_actions.ACTIONS.
    for resource in (versions, extensions, flavors, images, servers, instance_actions,
                     availability_zones, limits, server_metadata, image_metadata,
                     server_actions, keypairs, security_groups, security_group_rules,
                     server_ips, floating_ips, volumes, volume_snapshots, volume_types,
                     volume_attachments, quota_sets, hypervisors, compute_services,
                     tenant_usage, nova_networks, aggregates):
        resource.setup(app.router)
    return app


async def run(settings: Settings) -> None:
    await apply_migrations(settings.database.url)
    pool = await create_pool(settings.database)
    connection = await connect(settings.amqp.url)
    rpc = RpcClient(connection, timeout=settings.amqp.rpc_timeout_s,
                    publish_timeout=settings.amqp.publish_timeout_s)
    await rpc.start()
    # Publishes what this process wrote to the outbox, and what others left.
    relay = Relay(pool, rpc)
    relay.start()
    checks = {"database": database_check(pool), "broker": broker_check(connection)}
    health = health_handler(checks, service="api", outbox=lambda: relay.backlog)
    # The cloud-wide families (servers, hosts, queue depths) are read here, at scrape time.
    metrics = metrics_handler({"database": database_refresher(pool),
                               "queues": queue_refresher(connection, pool)})
    api = settings.api
    sites = [
        ("compute", create_compute_app(settings, pool, rpc, relay, health, metrics), api.host,
         api.port),
        ("identity", create_identity_app(pool, settings.identity), settings.identity.host,
         settings.identity.port),
        ("image", glance.create_app(settings, pool, rpc, relay), api.host, api.image_port),
        ("network", neutron.create_app(settings, pool, rpc, relay), api.host, api.network_port),
        ("block_storage", cinder.create_app(settings, pool, rpc, relay), api.host,
         api.block_storage_port),
    ]
    runners = []
    for _, app, host, port in sites:
        # On SIGTERM each stops listening, then gives requests in flight the grace.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=settings.shutdown.grace_s)
        await runner.setup()
        runners.append(runner)
        # Several API processes may share each port (``make up`` starts one per
        # core): the kernel spreads the connections among them.
        await web.TCPSite(runner, host, port, reuse_port=True).start()
    own_health = await start_health_server(settings.health, checks, metrics=metrics,
                                           service="api", outbox=lambda: relay.backlog)
    log.info("api.started", **{name: f"{host}:{port}" for name, _, host, port in sites})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("api.stopping")
    for runner in runners:
        await runner.cleanup()
    if own_health is not None:
        await own_health.cleanup()
    await relay.stop()
    await rpc.close()
    await connection.close()
    await pool.close()
