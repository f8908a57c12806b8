"""Cinder's version discovery and microversions.

``GET /`` answers 300 with the one version (v3), ``GET /v3/`` 200 with the same
list, as Cinder's versions controller does; keystoneauth and openstacksdk read
``version`` (the highest microversion) and ``min_version`` from it.

Nimbus serves microversion 3.0 only: every operation here is 3.0's shape, and
claiming more would make clients send fields and expect answers we do not
have. A request under ``/v3`` may ask for a version with
``OpenStack-API-Version: volume 3.0`` (or the legacy
``OpenStack-Volume-microversion: 3.0``); as in Cinder, a header that names no
``volume`` version is the minimum, ``latest`` is the maximum, a malformed
version is 400 and one outside 3.0..3.0 is 406. Every ``/v3`` response names
the version it was served at in ``OpenStack-API-Version`` and says ``Vary`` on
it.
"""

from __future__ import annotations

import re

from aiohttp import web

from services.api.middleware import Handler
from services.api.side_apps import endpoint_url, json_response
from shared.errors import BadRequest, ComputeError

MIN_VERSION = (3, 0)
MAX_VERSION = (3, 0)

HEADER = "OpenStack-API-Version"
LEGACY_HEADER = "OpenStack-Volume-microversion"
SERVICE = "volume"

_VERSION = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")
_KEY = "volume_api_version"


class VersionNotAcceptable(ComputeError):
    """A microversion outside the ones served: 406, as Cinder's
    InvalidGlobalAPIVersion (whose fault is a computeFault: Cinder names no
    other element for 406)."""

    http_status, fault_name = 406, "computeFault"


def _text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def _requested(request: web.Request) -> str | None:
    """The ``volume`` version the request's headers ask for, if any (the first
    ``volume`` entry of the comma-separated ``OpenStack-API-Version`` values, else
    the legacy header)."""
    for value in request.headers.getall(HEADER, []):
        for item in value.split(","):
            parts = item.strip().split(None, 1)
            if len(parts) == 2 and parts[0].lower() == SERVICE:
                return parts[1].strip()
    legacy = request.headers.get(LEGACY_HEADER)
    return legacy.strip() if legacy is not None else None


def negotiate(request: web.Request) -> tuple[int, int]:
    """The version the request is served at (see the module docstring)."""
    asked = _requested(request)
    if asked is None:
        return MIN_VERSION
    if asked.lower() == "latest":
        return MAX_VERSION
    match = _VERSION.match(asked)
    if match is None:
        raise BadRequest(f"API Version String {asked} is of invalid format. Must be of format "
                         "MajorNum.MinorNum.")
    version = (int(match.group(1)), int(match.group(2)))
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise VersionNotAcceptable(
            f"Version {_text(version)} is not supported by the API. Minimum is "
            f"{_text(MIN_VERSION)} and maximum is {_text(MAX_VERSION)}.")
    return version


@web.middleware
async def microversion_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/v3"):
        request[_KEY] = negotiate(request)
    return await handler(request)


async def version_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the version header on every /v3 answer, faults too."""
    version = request.get(_KEY)
    if version is None:
        return
    response.headers[HEADER] = f"{SERVICE} {_text(version)}"
    vary = response.headers.get("Vary")
    response.headers["Vary"] = f"{vary}, {HEADER}" if vary else HEADER


def _document(request: web.Request) -> dict[str, object]:
    href = f"{endpoint_url(request)}/v3/"
    return {"id": "v3.0", "status": "CURRENT", "version": _text(MAX_VERSION),
            "min_version": _text(MIN_VERSION), "updated": "2026-12-06T00:00:00Z",
            "links": [{"rel": "describedby", "type": "text/html",
                       "href": "https://docs.openstack.org/"},
                      {"rel": "self", "href": href}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.volume+json;version=3"}]}


async def list_versions(request: web.Request) -> web.Response:
    # Cinder answers 300 Multiple Choices at its root; keystoneauth reads the body.
    return json_response({"versions": [_document(request)]},
                         300 if request.path == "/" else 200)
