"""Extensions list and get (sections 4.4.1.2-3): only what is implemented."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.api.extensions_catalog import IMPLEMENTED, Extension
from services.api.representation import View, represented, route
from shared.errors import NotFound


def _view(ext: Extension) -> dict[str, Any]:
    return {"alias": ext.alias, "name": ext.name, "namespace": ext.namespace,
            "updated": ext.updated, "description": ext.description, "links": []}


@represented
async def list_extensions(request: web.Request) -> View:
    return View({"extensions": [_view(e) for e in IMPLEMENTED.values()]})


@represented
async def show_extension(request: web.Request) -> View:
    ext = IMPLEMENTED.get(request.match_info["alias"])
    if ext is None:
        raise NotFound(f"Extension {request.match_info['alias']} could not be found.")
    return View({"extension": _view(ext)})


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/extensions", list_extensions)
    route(router, "GET", "/v2/{project_id}/extensions/{alias}", show_extension)
