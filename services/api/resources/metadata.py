"""The six metadata operations, shared by servers (4.4.1.11-16) and images (4.4.1.26-31).

A resource with a JSONB ``metadata`` column supplies a :class:`MetadataStore`
(how to read it, who may change it, the atomic SQL that changes it) and calls
:func:`setup_metadata_routes`; the body rules, limits and faults live here once:

* keys are 1 to 255 bytes, values strings of at most 255 bytes (400 otherwise,
  as the create-server body does);
* more items than the project's ``maxServerMeta``/``maxImageMeta`` (from
  ``services.api.quotas.absolute_limits``; -1 is unlimited) is 413 overLimit
  (``QuotaExceeded``, with ``Retry-After: 0``);
* PUT of one item takes ``{"meta": {"<key>": "<value>"}}`` (XML ``<meta
  key="k">v</meta>``) with exactly one item whose key is the URL's, else 400;
* a key that is not there is 404 on read and delete.

Spec contradictions settled here: the server version of "Create or Update
Metadata Item" (4.4.1.15) shows a ``metadata`` body and response with two
items, and every curl example sends ``metadata``; the image version (4.4.1.30,
the most detailed, and Nova) uses ``meta`` with one item. We answer with
``meta`` and accept either root, with exactly one item.

Changes are single guarded UPDATE statements (merge with ``||``, the item
count checked in the same statement), so two concurrent POSTs cannot lose
each other's items, and a limit can't be overrun by racing requests.
"""

from __future__ import annotations

import abc
from typing import Any

import asyncpg
from aiohttp import web

from services.api import quotas
from services.api.keys import POOL
from services.api.representation import View, parse_body, represented, route
from services.api.resources.common import principal
from shared.errors import BadRequest, MalformedBody, NotFound, QuotaExceeded

MAX_BYTES = 255
"""Longest key or value, in UTF-8 bytes."""


class MetadataItemNotFound(NotFound):
    default_message = "Metadata item was not found"


def check_key(key: str) -> str:
    if not key:
        raise BadRequest("Metadata property key blank.")
    if len(key.encode()) > MAX_BYTES:
        raise BadRequest(f"Metadata property key longer than {MAX_BYTES} bytes.")
    return key


def check_items(items: Any) -> dict[str, str]:
    """``items`` (the body's ``metadata`` object) checked: string keys and values, sizes."""
    if not isinstance(items, dict):
        raise MalformedBody()
    for key, value in items.items():
        check_key(key)
        if not isinstance(value, str):
            raise BadRequest(f"Metadata property value for key '{key}' is not a string.")
        if len(value.encode()) > MAX_BYTES:
            raise BadRequest(f"Metadata property value for key '{key}' is longer "
                             f"than {MAX_BYTES} bytes.")
    return items


def metadata_from_body(body: dict[str, Any]) -> dict[str, str]:
    """The items of a POST/PUT ``{"metadata": {...}}`` body."""
    return check_items(body.get("metadata"))


def item_from_body(body: dict[str, Any], key: str) -> str:
    """The value of a PUT ``{"meta": {key: value}}`` body for the URL's ``key``."""
    item = body["meta"] if "meta" in body else body.get("metadata")
    if not isinstance(item, dict):
        raise MalformedBody()
    if len(item) > 1:
        raise BadRequest("Request body contains too many items")
    if key not in item:
        raise BadRequest("Request body and URI mismatch")
    return check_items(item)[key]


def over_limit(allowed: int) -> QuotaExceeded:
    return QuotaExceeded(f"Maximum number of metadata items exceeds {allowed}")


class MetadataStore(abc.ABC):
    """Where one kind of resource keeps its metadata, and who may change it."""

    limit: str
    """The absolute limit that caps the item count (``maxServerMeta``)."""
    path: str
    """The owner's path (``/v2/{project_id}/servers/{server_id}``)."""

    @abc.abstractmethod
    async def read(self, conn: asyncpg.Connection, request: web.Request) -> dict[str, str]:
        """The metadata; raise NotFound if the caller cannot see the owner."""

    @abc.abstractmethod
    async def check_writable(self, conn: asyncpg.Connection, request: web.Request) -> None:
        """Raise NotFound (or Forbidden) if the caller may not change the metadata."""

    @abc.abstractmethod
    async def merge(self, conn: asyncpg.Connection, request: web.Request,
                    items: dict[str, str], allowed: int) -> dict[str, str] | None:
        """Add or overwrite ``items``, if the result has at most ``allowed`` items
        (-1: any) and the caller may write; the new metadata, or None."""

    @abc.abstractmethod
    async def replace(self, conn: asyncpg.Connection, request: web.Request,
                      items: dict[str, str]) -> dict[str, str] | None:
        """Make ``items`` the whole metadata; the new metadata, or None."""

    @abc.abstractmethod
    async def delete_key(self, conn: asyncpg.Connection, request: web.Request,
                         key: str) -> bool:
        """Remove ``key``; False if it (or the writable owner) is not there."""


async def _allowed(conn: asyncpg.Connection, request: web.Request, limit: str) -> int:
    limits = await quotas.absolute_limits(conn, principal(request).project_id)
    return int(limits.get(limit, -1))


# The operations, apart from how a body is read and an answer written: the
# compute API's routes below and the block-storage endpoint's volume metadata
# both run these.

async def update(conn: asyncpg.Connection, request: web.Request, store: MetadataStore,
                 items: dict[str, str]) -> dict[str, str]:
    """Merge ``items`` (checked) into the metadata; the whole new metadata."""
    await store.check_writable(conn, request)
    allowed = await _allowed(conn, request, store.limit)
    if 0 <= allowed < len(items):
        raise over_limit(allowed)
    merged = await store.merge(conn, request, items, allowed)
    if merged is None:
        await store.check_writable(conn, request)  # gone meanwhile: 404
        raise over_limit(allowed)
    return merged


async def replace(conn: asyncpg.Connection, request: web.Request, store: MetadataStore,
                  items: dict[str, str]) -> dict[str, str]:
    """Make ``items`` (checked) the whole metadata."""
    await store.check_writable(conn, request)
    allowed = await _allowed(conn, request, store.limit)
    if 0 <= allowed < len(items):
        raise over_limit(allowed)
    replaced = await store.replace(conn, request, items)
    if replaced is None:
        await store.check_writable(conn, request)  # gone meanwhile: 404
        raise NotFound()
    return replaced


async def show_key(conn: asyncpg.Connection, request: web.Request, store: MetadataStore,
                   key: str) -> str:
    metadata = await store.read(conn, request)
    if key not in metadata:
        raise MetadataItemNotFound()
    return metadata[key]


async def set_key(conn: asyncpg.Connection, request: web.Request, store: MetadataStore,
                  key: str, value: str) -> None:
    await store.check_writable(conn, request)
    allowed = await _allowed(conn, request, store.limit)
    if await store.merge(conn, request, {key: value}, allowed) is None:
        await store.check_writable(conn, request)
        raise over_limit(allowed)


async def delete_key(conn: asyncpg.Connection, request: web.Request, store: MetadataStore,
                     key: str) -> None:
    await store.check_writable(conn, request)
    if not await store.delete_key(conn, request, key):
        await store.check_writable(conn, request)
        raise MetadataItemNotFound()


def setup_metadata_routes(router: web.UrlDispatcher, store: MetadataStore) -> None:
    """Register the six operations under ``store.path``."""

    @represented
    async def list_metadata(request: web.Request) -> View:
        async with request.app[POOL].acquire() as conn:
            return View({"metadata": await store.read(conn, request)})

    @represented
    async def update_metadata(request: web.Request) -> View:
        items = metadata_from_body(await parse_body(request, root="metadata"))
        async with request.app[POOL].acquire() as conn:
            return View({"metadata": await update(conn, request, store, items)})

    @represented
    async def replace_metadata(request: web.Request) -> View:
        items = metadata_from_body(await parse_body(request, root="metadata"))
        async with request.app[POOL].acquire() as conn:
            return View({"metadata": await replace(conn, request, store, items)})

    @represented
    async def show_item(request: web.Request) -> View:
        key = request.match_info["key"]
        async with request.app[POOL].acquire() as conn:
            return View({"meta": {key: await show_key(conn, request, store, key)}})

    @represented
    async def set_item(request: web.Request) -> View:
        key = check_key(request.match_info["key"])
        value = item_from_body(await parse_body(request), key)
        async with request.app[POOL].acquire() as conn:
            await set_key(conn, request, store, key, value)
        return View({"meta": {key: value}})

    @represented
    async def delete_item(request: web.Request) -> View:
        async with request.app[POOL].acquire() as conn:
            await delete_key(conn, request, store, request.match_info["key"])
        return View(None, status=204)

    route(router, "GET", f"{store.path}/metadata", list_metadata)
    route(router, "POST", f"{store.path}/metadata", update_metadata)
    route(router, "PUT", f"{store.path}/metadata", replace_metadata)
    route(router, "GET", f"{store.path}/metadata/{{key}}", show_item)
    route(router, "PUT", f"{store.path}/metadata/{{key}}", set_item)
    route(router, "DELETE", f"{store.path}/metadata/{{key}}", delete_item)
