"""The block-storage endpoint's routes (a Cinder v3 subset)."""

from __future__ import annotations

from aiohttp import web

from services.api.side_apps import endpoint_url, json_response


async def list_versions(request: web.Request) -> web.Response:
    href = f"{endpoint_url(request)}/v3/"
    version = {"id": "v3.0", "status": "CURRENT", "version": "3.0", "min_version": "3.0",
               "updated": "2026-12-06T00:00:00Z", "links": [{"rel": "self", "href": href}]}
    # Cinder answers 300 Multiple Choices at its root; keystoneauth reads the body.
    return json_response({"versions": [version]}, 300 if request.path == "/" else 200)


def setup(router: web.UrlDispatcher) -> None:
    for path in ("/", "/v3", "/v3/"):
        router.add_get(path, list_versions)
