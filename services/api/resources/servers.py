"""Servers: list, list detail, get, delete (sections 4.4.1.5, 4.4.1.7-8, 4.4.1.10);
create lives in ``server_create``.

Delete claims the server's task state and hands the work to the agent that
owns it (or, when that host is down, frees the server here).
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from services.api.keys import POOL, RPC, SETTINGS
from services.api.queries import servers as q
from services.api.representation import View, represented, route
from services.api.resources import server_create
from services.api.resources.common import base_url, parse_uuid, principal
from services.api.views import servers as views
from shared.contracts.compute import (
    ComputeClient,
    DeleteServer,
)
from shared.contracts.network import NetworkClient
from shared.db import actions, hosts
from shared.db import servers as server_db
from shared.errors import ServerNotFound, ServiceUnavailable
from shared.teardown import delete_without_host

log = structlog.get_logger(__name__)

@represented
async def list_servers(request: web.Request) -> View:
    pid = principal(request).project_id
    async with request.app[POOL].acquire() as conn:
        rows = await q.list_for_project(conn, pid)
    base = base_url(request)
    return View({"servers": [views.brief(r, base, pid) for r in rows]})


@represented
async def list_servers_detail(request: web.Request) -> View:
    pid = principal(request).project_id
    async with request.app[POOL].acquire() as conn:
        rows = await q.list_for_project(conn, pid)
    base = base_url(request)
    admin = principal(request).is_admin
    return View({"servers": [views.detail(r, base, pid, is_admin=admin) for r in rows]})


async def _load(request: web.Request) -> Any:
    raw = request.match_info["server_id"]
    sid = parse_uuid(raw)
    row = None
    if sid is not None:
        async with request.app[POOL].acquire() as conn:
            row = await q.get(conn, principal(request).project_id, sid)
    if row is None:
        raise ServerNotFound(raw)
    return row


@represented
async def show_server(request: web.Request) -> View:
    row = await _load(request)
    who = principal(request)
    return View({"server": views.detail(row, base_url(request), who.project_id,
                                        is_admin=who.is_admin)})


@represented
async def delete_server(request: web.Request) -> View:
    who = principal(request)
    row = await _load(request)
    sid = row["id"]
    pool = request.app[POOL]
    api = request.app[SETTINGS].api
    async with pool.acquire() as conn:
        claimed, host = await server_db.start_delete(conn, sid, who.project_id,
                                                     stale_after_s=api.stale_delete_s)
        if claimed:
            await actions.start_action(conn, server_id=sid, project_id=who.project_id,
                                       user_id=who.user_id, action="delete",
                                       request_id=request["request_id"])
        if claimed and host is None:
            # Never placed (still scheduling, or no host fitted): nothing is held
            # anywhere, and the scheduler drops a build whose server left
            # BUILD(scheduling).
            await server_db.mark_deleted(conn, sid)
        host_alive = host is not None and await hosts.is_alive(conn, host,
                                                                api.service_down_time_s)
    try:
        if claimed and host is not None and host_alive:
            await ComputeClient(request.app[RPC]).delete_server(host, DeleteServer(server_id=sid))
        elif claimed and host is not None:
            # Its host is down: waiting for it could take forever.
            await delete_without_host(pool, NetworkClient(request.app[RPC]), sid)
    except Exception as exc:
        log.error("api.delete_failed", server_id=str(sid), host=host, error=str(exc))
        async with pool.acquire() as conn:
            await server_db.undo_delete(conn, sid)
        raise ServiceUnavailable(f"Server {sid} could not be deleted now; try again.") from None
    log.info("api.server_delete", server_id=str(sid), host=host, claimed=claimed)
    return View(None, status=204)


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/servers", list_servers)
    route(router, "POST", "/v2/{project_id}/servers", server_create.create_server)
    route(router, "GET", "/v2/{project_id}/servers/detail", list_servers_detail)
    route(router, "GET", "/v2/{project_id}/servers/{server_id}", show_server)
    route(router, "DELETE", "/v2/{project_id}/servers/{server_id}", delete_server)
