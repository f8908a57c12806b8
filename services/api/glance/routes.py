"""The image endpoint's routes (a Glance v2 subset)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.api.side_apps import endpoint_url, json_response


def _versions(request: web.Request) -> dict[str, Any]:
    href = f"{endpoint_url(request)}/v2/"
    return {"versions": [{"id": "v2.0", "status": "CURRENT",
                          "links": [{"rel": "self", "href": href}]}]}


async def list_versions(request: web.Request) -> web.Response:
    # Glance answers 300 Multiple Choices here; keystoneauth reads the body.
    status = 300 if request.path == "/" else 200
    return json_response(_versions(request), status)


def setup(router: web.UrlDispatcher) -> None:
    for path in ("/", "/versions"):
        router.add_get(path, list_versions)
