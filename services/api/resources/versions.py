"""Version discovery: ``GET /``, ``GET /v2`` and ``GET /v2/{project_id}`` (section 4.4.1.1).

There are no microversions: ``version`` and ``min_version`` are empty, so
keystoneauth, novaclient and openstacksdk settle on plain 2.0.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.api.representation import View, represented, route
from services.api.resources.common import base_url

_UPDATED = "2011-01-21T11:33:21Z"


def _version(base: str, *, detail: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "v2.0", "status": "CURRENT", "updated": _UPDATED, "version": "", "min_version": "",
        "links": [{"rel": "self", "href": f"{base}/v2/"}],
    }
    if detail:
        doc["links"] += [
            {"rel": "describedby", "type": "application/pdf",
             "href": "http://docs.openstack.org/api/openstack-compute/2/os-compute-devguide-2.pdf"},
            {"rel": "describedby", "type": "application/vnd.sun.wadl+xml",
             "href": "http://docs.openstack.org/api/openstack-compute/2/wadl/os-compute-2.wadl"},
        ]
        doc["media-types"] = [
            {"base": "application/xml", "type": "application/vnd.openstack.compute+xml;version=2"},
            {"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"},
        ]
    return doc


@represented
async def list_versions(request: web.Request) -> View:
    return View({"versions": [_version(base_url(request), detail=False)]})


@represented
async def show_version(request: web.Request) -> View:
    return View({"version": _version(base_url(request), detail=True)})


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/", list_versions)
    route(router, "GET", "/v2", show_version)
    route(router, "GET", "/v2/", show_version)
    route(router, "GET", "/v2/{project_id}", show_version)
