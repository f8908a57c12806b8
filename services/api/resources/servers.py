"""Servers: list, list detail, get, update, delete (sections 4.4.1.5, 4.4.1.7-10);
create lives in ``server_create``, metadata in ``server_metadata``.

Lists page with ``limit``/``marker`` and poll with ``changes-since`` (see
``pagination``) and filter by:

* ``name``: a case-sensitive regular expression (PostgreSQL ``~``), as Nova
  matched names; an invalid one is 400. ``name=web`` finds ``web1`` and ``my-web``.
* ``status``: the API status, case-insensitive; ``BUILD`` matches every
  ``BUILD(...)``, ``BUILD(spawning)`` only that step. A status no server can
  have gives an empty list, as in Nova (not a 400). ``DELETED`` finds deleted
  servers only together with ``changes-since``, like any deleted server.
* ``image``, ``flavor``: an id or a link ending with it; one that matches
  nothing gives an empty list.

Other query parameters are ignored, as Nova ignored them for non-admins.

Get and list detail show the ``addresses`` of a server whose vm_state is one of
``hide_server_address_states`` (``building`` by default) empty, as Nova's
os-hide-server-addresses did; update, rebuild and ``.../ips`` show them still,
as they did in Nova.

Update (4.4.1.9) changes the name and, as Nova's v2 API also did, ``accessIPv4``
and ``accessIPv6``; the spec's example shows only the name. A body naming none
of them is 400. A server that is deleted or being deleted is 404 there. The
answer is the server's core view, as the spec's example shows it (no extension
attributes, addresses with version and addr only).

Delete claims the server's task state and hands the work to the agent that
owns it (or, when that host is down, frees the server here).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import msgspec
import structlog
from aiohttp import web

from services.api.keys import POOL, RELAY, RPC, SETTINGS
from services.api.queries import servers as q
from services.api.representation import View, parse_body, represented, route
from services.api.resources import server_create
from services.api.resources.common import base_url, load_server, parse_uuid, principal, ref_id
from services.api.resources.pagination import Page, bad_marker, next_links, page_params
from services.api.views import servers as views
from shared import outbox
from shared.contracts.compute import DeleteServer, host_queue
from shared.contracts.network import NetworkClient
from shared.db import actions, hosts
from shared.db import servers as server_db
from shared.errors import BadRequest, ServerNotFound, ServiceUnavailable
from shared.states import TaskState, VmState, api_status
from shared.teardown import delete_without_host

log = structlog.get_logger(__name__)


def _status_matches(shown: str, wanted: str) -> bool:
    shown, wanted = shown.upper(), wanted.upper()
    return shown == wanted or (wanted == "BUILD" and shown.startswith("BUILD("))


def states_for_status(status: str) -> list[str]:
    """The ``vm_state/task_state`` pairs whose API status is ``status``.

    Worked out from ``api_status`` itself over every pair of states, so the
    filter follows any status a new state or task brings without a second table.
    """
    pairs = []
    for vm in VmState:
        for task in (None, *TaskState):
            try:
                shown = api_status(vm, task)
            except (KeyError, ValueError):  # a pair that cannot happen
                continue
            if _status_matches(shown, status):
                pairs.append(f"{vm.value}/{task.value if task else ''}")
    return pairs


async def _page(request: web.Request, *, brief: bool) -> tuple[list[Any], Page]:
    """The rows of one page of the caller's servers, filtered as the query asks
    (with ``brief``, the id and name only)."""
    pid = principal(request).project_id
    page = page_params(request)
    query = request.query
    # A status no server can have, or an image that is no id, matches nothing
    # (Nova answers the same); the rest of the query is still checked.
    matchless = False
    states = None
    if "status" in query:
        states = states_for_status(query["status"].strip())
        matchless = not states
    image_id = None
    if "image" in query:
        image_id = parse_uuid(ref_id(query["image"]))
        matchless = matchless or image_id is None
    flavor_id = ref_id(query["flavor"]) if "flavor" in query else None
    name = query.get("name")
    filters = q.ServerFilters(changes_since=page.changes_since, name_regex=name, states=states,
                              image_id=image_id, flavor_id=flavor_id)
    async with request.app[POOL].acquire() as conn:
        if name is not None and not await q.regex_valid(conn, name):
            raise BadRequest(f"Invalid regular expression in the name filter: {name!r}")
        after = None
        if page.marker is not None:
            marker_id = parse_uuid(page.marker)
            after = await q.marker_position(conn, pid, marker_id) if marker_id else None
            if after is None:
                raise bad_marker(page.marker)
        if matchless:
            return [], page
        rows = await q.list_page(conn, pid, filters, page.limit, after, brief=brief)
    return rows, page


@represented
async def list_servers(request: web.Request) -> View:
    pid = principal(request).project_id
    rows, page = await _page(request, brief=True)
    base = base_url(request)
    items = [views.brief(r, base, pid) for r in rows]
    return View({"servers": items, **next_links(request, "servers", "servers", items, page)})


def _details(request: web.Request, rows: list[Any]) -> list[dict[str, Any]]:
    """The details of get and list detail, with the addresses of a server in one of
    the configured states hidden (os-hide-server-addresses)."""
    who, base = principal(request), base_url(request)
    hidden = request.app[SETTINGS].api.hidden_address_states()
    return [views.detail(row, base, who.project_id, is_admin=who.is_admin,
                         hide_addresses_in=hidden) for row in rows]


@represented
async def list_servers_detail(request: web.Request) -> View:
    rows, page = await _page(request, brief=False)
    items = _details(request, rows)
    return View({"servers": items,
                 **next_links(request, "servers/detail", "servers", items, page)})


@represented
async def show_server(request: web.Request) -> View:
    [server] = _details(request, [await load_server(request)])
    return View({"server": server})


class UpdateServerBody(msgspec.Struct, kw_only=True):
    name: str | None = None
    accessIPv4: str | None = None
    accessIPv6: str | None = None


def _access_ip(value: str | None, version: int, field: str) -> str | None:
    """An accessIPv4/v6 value checked (an empty string clears it)."""
    if value is None or value == "":
        return value
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise BadRequest(f"{field} is not proper IPv{version} format.")
    return str(address)


def parse_update(body: dict[str, Any]) -> UpdateServerBody:
    """The body of update server (4.4.1.9), checked."""
    server = body.get("server")
    if not isinstance(server, dict):
        raise BadRequest("The request body must hold a 'server' object.")
    try:
        req = msgspec.convert(server, UpdateServerBody, strict=False)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"Invalid input for field/attribute server: {exc}") from None
    if req.name is None and req.accessIPv4 is None and req.accessIPv6 is None:
        raise BadRequest("Nothing to update: give the server a name.")
    name = req.name
    if name is not None:
        name = name.strip()
        if not name or len(name) > 255:
            raise BadRequest("Server name must be a string of 1 to 255 characters, "
                             "not all blank.")
    return UpdateServerBody(name=name,
                            accessIPv4=_access_ip(req.accessIPv4, 4, "accessIPv4"),
                            accessIPv6=_access_ip(req.accessIPv6, 6, "accessIPv6"))


@represented
async def update_server(request: web.Request) -> View:
    who = principal(request)
    raw = request.match_info["server_id"]
    sid = parse_uuid(raw)
    req = parse_update(await parse_body(request, root="server"))
    if sid is None:
        raise ServerNotFound(raw)
    async with request.app[POOL].acquire() as conn:
        if not await q.update(conn, who.project_id, sid, name=req.name,
                              access_ipv4=req.accessIPv4, access_ipv6=req.accessIPv6):
            raise ServerNotFound(raw)
        row = await q.get(conn, who.project_id, sid)
    if row is None:  # deleted in between
        raise ServerNotFound(raw)
    log.info("api.server_update", server_id=str(sid))
    return View({"server": views.core(row, base_url(request), who.project_id,
                                      is_admin=who.is_admin)})


@represented
async def delete_server(request: web.Request) -> View:
    """Claim the delete, then: a server that holds nothing anywhere (never placed)
    is DELETED here; one on a live host is handed to its agent through the outbox
    (accepted even while the broker is down); one whose host counts as down, or
    that was taken off a dead host and still keeps its ports, is deleted without
    a host (``shared.teardown``), which needs the network service: 503 (and the
    delete given back) if that cannot be reached."""
    who = principal(request)
    row = await load_server(request)
    sid, rid = row["id"], request["request_id"]
    pool, relay = request.app[POOL], request.app[RELAY]
    api = request.app[SETTINGS].api
    item, without_host = None, False
    async with pool.acquire() as conn, conn.transaction():
        claimed, host, previous_task = await server_db.start_delete(
            conn, sid, who.project_id, request_id=rid, stale_after_s=api.stale_delete_s)
        if claimed:
            await actions.start_action(conn, server_id=sid, project_id=who.project_id,
                                       user_id=who.user_id, action="delete", request_id=rid)
            if host is not None and not await hosts.is_down(conn, host,
                                                             api.service_down_time_s):
                item = await outbox.put(conn, host_queue(host), DeleteServer(server_id=sid),
                                        request_id=rid, lease_s=relay.lease_s)
            elif host is not None or await q.holds_ports(conn, sid):
                without_host = True
            else:
                # Never placed (still scheduling, or no host fitted): nothing is held
                # anywhere, and the scheduler drops a build whose server left
                # BUILD(scheduling).
                await server_db.mark_deleted(conn, sid, request_id=rid)
    if item is not None:
        relay.send(item)
    elif without_host:
        try:
            await delete_without_host(pool, NetworkClient(request.app[RPC], request_id=rid), sid,
                                      request_id=rid)
        except Exception as exc:
            log.error("api.delete_failed", server_id=str(sid), host=host, error=str(exc))
            async with pool.acquire() as conn:
                await server_db.undo_delete(conn, sid, previous_task, request_id=rid)
            raise ServiceUnavailable(f"Server {sid} could not be deleted now; try again.") from None
    log.info("api.server_delete", server_id=str(sid), host=host, claimed=claimed)
    return View(None, status=204)


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/servers", list_servers)
    route(router, "POST", "/v2/{project_id}/servers", server_create.create_server)
    route(router, "GET", "/v2/{project_id}/servers/detail", list_servers_detail)
    route(router, "GET", "/v2/{project_id}/servers/{server_id}", show_server)
    route(router, "PUT", "/v2/{project_id}/servers/{server_id}", update_server)
    route(router, "DELETE", "/v2/{project_id}/servers/{server_id}", delete_server)
