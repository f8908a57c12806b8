"""The network endpoint's routes (a Neutron v2.0 subset)."""

from __future__ import annotations

from aiohttp import web

from services.api.side_apps import endpoint_url, json_response


async def list_versions(request: web.Request) -> web.Response:
    href = f"{endpoint_url(request)}/v2.0/"
    return json_response({"versions": [{"id": "v2.0", "status": "CURRENT",
                                        "links": [{"rel": "self", "href": href}]}]})


def setup(router: web.UrlDispatcher) -> None:
    router.add_get("/", list_versions)
