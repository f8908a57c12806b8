"""Content negotiation (suffix, Accept, default) and suffix-aware routing."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from services.api.representation import (
    View,
    format_for_accept,
    negotiate,
    represented,
    route,
    suffixed_path,
)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", "json"),
        ("application/xml", "xml"),
        ("text/xml", "xml"),
        ("*/*", "json"),
        ("application/*", "json"),
        ("application/vnd.openstack.compute+xml;version=2", "xml"),
        ("application/vnd.openstack.compute+json;version=2", "json"),
        ("application/xml, */*", "xml"),
        ("*/*, application/xml", "xml"),
        ("application/json, application/xml", "json"),
        ("application/xml, application/json", "json"),
        ("application/xml;q=0.9, application/json;q=0.8", "xml"),
        ("application/json;q=0.5, application/xml", "xml"),
        ("application/xml;q=0, */*", "json"),
        ("application/xml;q=bogus, application/json;q=0.1", "json"),
        ("text/html", "json"),
        ("text/html, application/xhtml+xml", "json"),
        ("TEXT/HTML, APPLICATION/XML", "xml"),
    ],
)
def test_accept_header_table(accept: str, expected: str) -> None:
    assert format_for_accept(accept) == expected


def _request(path: str, accept: str | None = None, fmt: str | None = None) -> web.Request:
    headers = {"Accept": accept} if accept is not None else {}
    match_info = {"fmt": fmt} if fmt is not None else {}
    return make_mocked_request("GET", path, headers=headers, match_info=match_info)


@pytest.mark.parametrize(
    ("path", "accept", "fmt", "expected"),
    [
        ("/v2/p/servers", None, "", "json"),  # no suffix, no Accept: JSON
        ("/v2/p/servers", "application/xml", "", "xml"),
        ("/v2/p/servers.xml", "application/json", ".xml", "xml"),  # suffix wins
        ("/v2/p/servers.json", "application/xml", ".json", "json"),  # suffix wins
        ("/v2/p/servers.xml", None, ".xml", "xml"),
        # No route matched: the raw path's suffix, then Accept.
        ("/v2/p/nothing.xml", "application/json", None, "xml"),
        ("/v2/p/nothing.json", "application/xml", None, "json"),
        ("/v2/p/nothing", "application/xml", None, "xml"),
        ("/v2/p/nothing", None, None, "json"),
    ],
)
def test_negotiate(path: str, accept: str | None, fmt: str | None, expected: str) -> None:
    assert negotiate(_request(path, accept, fmt)) == expected


def test_suffixed_path_makes_plain_variables_non_greedy() -> None:
    assert suffixed_path("/v2/{project_id}/servers/{server_id}") == (
        r"/v2/{project_id:[^{}/]+?}/servers/{server_id:[^{}/]+?}{fmt:(?:\.json|\.xml)?}"
    )
    # An explicit regex is the caller's to choose.
    assert suffixed_path("/v2/{project_id}/x/{n:\\d+}").endswith(r"{n:\d+}{fmt:(?:\.json|\.xml)?}")


@represented
async def _echo(request: web.Request) -> View:
    return View({"echo": {k: v for k, v in request.match_info.items()}})


@pytest.fixture
async def client():
    app = web.Application()
    route(app.router, "GET", "/", _echo)
    route(app.router, "GET", "/v2/{project_id}/servers/detail", _echo)
    route(app.router, "GET", "/v2/{project_id}/servers/{server_id}", _echo)
    route(app.router, "GET", "/v2/{project_id}/servers/{server_id}/metadata/{key}", _echo)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _echo_json(client: TestClient, path: str) -> dict:
    resp = await client.get(path, headers={"Accept": "application/json"})
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/json"
    return (await resp.json())["echo"]


async def test_suffix_reaches_the_same_handler(client: TestClient) -> None:
    plain = await _echo_json(client, "/v2/p/servers/abc")
    assert plain == {"project_id": "p", "server_id": "abc", "fmt": ""}
    resp = await client.get("/v2/p/servers/abc.xml", headers={"Accept": "application/json"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/xml; charset=UTF-8"
    assert b'<echo ' in await resp.read()
    assert b'server_id="abc"' in await resp.read()
    assert (await _echo_json(client, "/v2/p/servers/abc.json"))["server_id"] == "abc"


async def test_literal_route_and_root_take_suffixes(client: TestClient) -> None:
    assert (await _echo_json(client, "/v2/p/servers/detail.json")) == {"project_id": "p", "fmt": ".json"}
    assert (await _echo_json(client, "/"))["fmt"] == ""
    assert (await _echo_json(client, "/.json"))["fmt"] == ".json"


async def test_dotted_values_stay_whole(client: TestClient) -> None:
    echo = await _echo_json(client, "/v2/p/servers/s/metadata/com.hp__1__os_distro")
    assert echo["key"] == "com.hp__1__os_distro"
    echo = await _echo_json(client, "/v2/p.q/servers/img.v1.2")
    assert echo["project_id"] == "p.q"
    assert echo["server_id"] == "img.v1.2"
    # The documented limit: a value ending in a format suffix loses it.
    echo = await _echo_json(client, "/v2/p/servers/s/metadata/os.json")
    assert echo == {"project_id": "p", "server_id": "s", "key": "os", "fmt": ".json"}
