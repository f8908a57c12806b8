"""The image endpoint's routes (a Glance v2 subset): version discovery, the
schema documents and ``images``.

Version discovery as Glance answers it: ``GET /`` is 300 Multiple Choices and
``GET /versions`` 200, both listing v2.9 (CURRENT) down to v2.0 (SUPPORTED),
each linking ``{endpoint}/v2/``. keystoneauth (under openstacksdk and the
openstack CLI) reads that list from the catalog's unversioned URL and settles
on the newest v2; it may then fetch the version's own URL (``/v2/``), which
answers the same list (200). Glance's minor versions add operations (import,
stores, tasks...) that Nimbus does not serve; no client negotiates them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.api.glance import images, schemas
from services.api.side_apps import endpoint_url, json_response

NEWEST_MINOR = 9


def versions(endpoint: str) -> dict[str, Any]:
    href = f"{endpoint}/v2/"
    return {"versions": [
        {"id": f"v2.{minor}", "status": "CURRENT" if minor == NEWEST_MINOR else "SUPPORTED",
         "links": [{"rel": "self", "href": href}]}
        for minor in range(NEWEST_MINOR, -1, -1)]}


async def list_versions(request: web.Request) -> web.Response:
    # Glance answers 300 Multiple Choices here; keystoneauth reads the body.
    status = 300 if request.path == "/" else 200
    return json_response(versions(endpoint_url(request)), status)


async def image_schema(request: web.Request) -> web.Response:
    return json_response(schemas.image_schema())


async def images_schema(request: web.Request) -> web.Response:
    return json_response(schemas.images_schema())


def setup(router: web.UrlDispatcher) -> None:
    for path in ("/", "/versions", "/v2", "/v2/"):
        router.add_get(path, list_versions)
    router.add_get("/v2/schemas/image", image_schema)
    router.add_get("/v2/schemas/images", images_schema)
    images.setup(router)
