"""What the block-storage handlers share: JSON bodies, the caller's scope, list
parameters (Cinder's filters, sort, limit and marker) and links.

Lists: ``limit`` and ``marker`` follow the compute API's rules
(``resources.pagination``: at most 1000 a page, a bad limit 400), except that
a marker naming nothing visible is 404 "Marker ... could not be found.", as
Cinder's MarkerNotFound. ``sort`` is Cinder's ``key[:dir],...`` (or
``sort_key``/``sort_dir``); the default is newest first. A project's volumes
and snapshots are bounded by its quota, so a list reads the filtered rows and
orders and cuts them here; ``all_tenants`` (admins only: Cinder ignores it
for others) lists every project's.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import msgspec
from aiohttp import web

from services.api.identity import Principal
from services.api.resources.common import principal
from services.api.resources.pagination import parse_limit, parse_marker
from services.api.side_apps import endpoint_url
from shared.errors import BadRequest, NotFound

_DECODER = msgspec.json.Decoder()

SORT_KEYS = {"id", "name", "status", "size", "availability_zone", "created_at", "updated_at"}
"""Keys a list may be sorted by (Cinder's names; ``display_name`` is ``name``)."""


async def json_body(request: web.Request, root: str) -> dict[str, Any]:
    """The ``root`` object of the request's JSON body; 400 for anything else."""
    raw = await request.read()
    try:
        body = _DECODER.decode(raw) if raw else None
    except msgspec.DecodeError:
        raise BadRequest("Malformed request body: it is not JSON.") from None
    if not isinstance(body, dict) or not isinstance(body.get(root), dict):
        raise BadRequest(f"Malformed request body: it must be a JSON object holding a "
                         f"'{root}' object.")
    return body[root]


def scope(request: web.Request) -> str | None:
    """The project whose items a list shows: the caller's; for an admin asking
    ``all_tenants``, every one's (None) or the one ``project_id`` names."""
    who: Principal = principal(request)
    flag = request.query.get("all_tenants", request.query.get("all_projects"))
    if who.is_admin and flag is not None and flag.strip().lower() not in ("0", "false", "no"):
        return request.query.get("project_id") or None
    return who.project_id


def is_admin(request: web.Request) -> bool:
    return principal(request).is_admin


def links(request: web.Request, collection: str, item_id: object) -> list[dict[str, str]]:
    pid = principal(request).project_id
    origin = endpoint_url(request)
    return [{"rel": "self", "href": f"{origin}/v3/{pid}/{collection}/{item_id}"},
            {"rel": "bookmark", "href": f"{origin}/{pid}/{collection}/{item_id}"}]


def metadata_filter(raw: str | None) -> dict[str, str]:
    """``metadata={"k": "v"}`` of a list: JSON, or the Python literal cinderclient
    sends (``{'k': 'v'}``); string keys and values. 400 otherwise."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise BadRequest(f"Invalid metadata filter {raw[:80]!r}: give a JSON object of strings.")
    return value


def sort_params(request: web.Request) -> list[tuple[str, str]]:
    """``[(key, dir)]`` from ``sort`` or ``sort_key``/``sort_dir``; newest first
    when neither is given. Cinder's 400s for an unknown key or direction."""
    query = request.query
    if "sort" in query and ("sort_key" in query or "sort_dir" in query):
        raise BadRequest("The 'sort_key' and 'sort_dir' parameters are deprecated and cannot "
                         "be used with the 'sort' parameter.")
    pairs: list[tuple[str, str]] = []
    if "sort" in query:
        for item in query["sort"].split(","):
            key, _, direction = item.strip().partition(":")
            pairs.append((key.strip(), direction.strip().lower() or "desc"))
    elif "sort_key" in query or "sort_dir" in query:
        pairs.append((query.get("sort_key", "created_at").strip(),
                      query.get("sort_dir", "desc").strip().lower()))
    out = []
    for key, direction in pairs:
        key = "name" if key == "display_name" else key
        if key not in SORT_KEYS:
            raise BadRequest(f"Invalid input received: Invalid sort key {key[:40]!r}; use one "
                             f"of {', '.join(sorted(SORT_KEYS))}.")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid input received: Invalid sort dirs passed: "
                             f"{direction[:40]}")
        out.append((key, direction))
    return out or [("created_at", "desc")]


def _ordered(items: list[dict[str, Any]], sort: list[tuple[str, str]]) -> list[dict[str, Any]]:
    # Stable sorts from the last key to the first; None sorts first ascending,
    # as PostgreSQL's NULLS FIRST for DESC mirrored. The rows came newest first,
    # which stays the order among equals, as Cinder's id tie-break would.
    out = list(items)
    for key, direction in reversed(sort):
        def value(item: dict[str, Any], key: str = key) -> tuple[bool, Any]:
            v = item[key]
            return (v is not None, v)
        out.sort(key=value, reverse=direction == "desc")
    return out


def page(request: web.Request, views: list[dict[str, Any]], collection: str, key: str,
         shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """``{key: [...], key_links?: [next]}``: ``views`` (detailed: each with ``id``
    and the sort keys) ordered, after the marker, cut at the limit, then each in
    ``shape`` (a summary view) if given. The next link is there while more follow."""
    limit = parse_limit(request.query.get("limit"))
    marker = parse_marker(request.query.get("marker"))
    ordered = _ordered(views, sort_params(request))
    if marker is not None:
        ids = [item["id"] for item in ordered]
        if marker not in ids:
            raise NotFound(f"Marker {marker[:80]} could not be found.")
        ordered = ordered[ids.index(marker) + 1:]
    shown = ordered[:limit]
    body: dict[str, Any] = {key: [shape(v) for v in shown] if shape else shown}
    if shown and len(ordered) > limit:
        params = [(k, v) for k, v in request.query.items() if k != "marker"]
        params.append(("marker", shown[-1]["id"]))
        href = (f"{endpoint_url(request)}/v3/{principal(request).project_id}/{collection}"
                f"?{urlencode(params)}")
        body[f"{key}_links"] = [{"rel": "next", "href": href}]
    return body
