"""Fault bodies (section 3.11) and the middleware, through a small real app."""

from __future__ import annotations

import msgspec
import pytest
import structlog.testing
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.api.representation import (
    View,
    fault_middleware,
    parse_body,
    render_fault,
    represented,
    route,
)
from shared import errors
from tests.unit.api.xmlcompare import assert_xml_equal, parse

V2 = "http://docs.openstack.org/compute/api/v2"

FAULTS = [
    (errors.BadRequest("Unable to find security_group with name 'test'"), 400, "badRequest"),
    (errors.MalformedBody(), 400, "badRequest"),
    (errors.Unauthorized(), 401, "unauthorized"),
    (errors.Forbidden(), 403, "forbidden"),
    (errors.NotFound(), 404, "itemNotFound"),
    (errors.ServerNotFound("abc"), 404, "itemNotFound"),
    (errors.BadMethod(), 405, "badMethod"),
    (errors.Conflict(), 409, "conflictingRequest"),
    (errors.OverLimit(details="Error Details...", retry_after=60), 413, "overLimit"),
    (errors.BadMediaType(), 415, "badMediaType"),
    (errors.ComputeError("Fault!", details="Error Details..."), 500, "computeFault"),
    (errors.NotImplementedFault(), 501, "notImplemented"),
    (errors.ServiceUnavailable(), 503, "serviceUnavailable"),
]


@pytest.mark.parametrize(("exc", "status", "name"), FAULTS, ids=[f[2] + str(f[1]) for f in FAULTS])
def test_fault_json(exc: errors.ComputeError, status: int, name: str) -> None:
    resp = render_fault(exc, "json")
    assert resp.status == status
    assert resp.headers["Content-Type"] == "application/json"
    expected = {"code": status, "message": exc.message}
    if exc.details is not None:
        expected["details"] = exc.details
    assert msgspec.json.decode(resp.body) == {name: expected}


@pytest.mark.parametrize(("exc", "status", "name"), FAULTS, ids=[f[2] + str(f[1]) for f in FAULTS])
def test_fault_xml(exc: errors.ComputeError, status: int, name: str) -> None:
    resp = render_fault(exc, "xml")
    assert resp.status == status
    assert resp.headers["Content-Type"] == "application/xml; charset=UTF-8"
    details = f"<details>{exc.details}</details>" if exc.details is not None else ""
    assert_xml_equal(
        resp.body,
        f'<{name} xmlns="{V2}" code="{status}"><message>{exc.message}</message>{details}</{name}>'
        .replace("'test'", "&apos;test&apos;"),
    )


def test_over_limit_carries_retry_after() -> None:
    resp = render_fault(errors.OverLimit("This request was rate-limited.", retry_after=60), "xml")
    assert resp.headers["Retry-After"] == "60"
    assert parse(resp.body).findtext(f"{{{V2}}}message") == "This request was rate-limited."
    assert "Retry-After" not in render_fault(errors.OverLimit(), "json").headers


def test_every_quota_fault_says_retry_after_0() -> None:
    from shared.contracts.floating_ips import FloatingIpQuotaExceeded
    from shared.contracts.security_groups import SecurityGroupQuotaExceeded
    from shared.rpc.envelope import fault_from, raise_fault
    for exc in (errors.QuotaExceeded("Quota exceeded for instances"),
                FloatingIpQuotaExceeded("Quota exceeded for floating_ips"),
                SecurityGroupQuotaExceeded("Quota exceeded, too many security groups.")):
        for fmt in ("json", "xml"):
            resp = render_fault(exc, fmt)
            assert (resp.status, resp.headers["Retry-After"]) == (413, "0")
        # As the API rebuilds it from the RPC fault (by class name, no __init__).
        with pytest.raises(type(exc)) as rebuilt:
            raise_fault(fault_from(exc))
        assert rebuilt.value.headers == {"Retry-After": "0"}


def test_item_not_found_json_matches_spec() -> None:
    resp = render_fault(errors.NotFound(), "json")
    assert msgspec.json.decode(resp.body) == {
        "itemNotFound": {"message": "The resource could not be found.", "code": 404}
    }


# ---- through the middleware ----------------------------------------------


@represented
async def create_server(request: web.Request) -> View:
    body = await parse_body(request, root="server")
    return View(body, 202, {"Location": "http://x/servers/1"})


@represented
async def show_server(request: web.Request) -> View:
    server_id = request.match_info["server_id"]
    if server_id == "missing":
        raise errors.ServerNotFound(server_id)
    if server_id == "limited":
        raise errors.OverLimit("This request was rate-limited.", retry_after=17)
    if server_id == "boom":
        raise RuntimeError("secret internal detail: password=hunter2")
    if server_id == "http":
        raise web.HTTPConflict()
    if server_id == "token":
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Keystone uri="http://id"'})
    if server_id == "gone":
        raise web.HTTPGone()
    if server_id == "redirect":
        raise web.HTTPFound("/elsewhere")
    return View({"server": {"id": server_id}})


@represented
async def delete_server(request: web.Request) -> View:
    return View(None, 204)


@pytest.fixture
async def client():
    app = web.Application(middlewares=[fault_middleware], client_max_size=1024)
    route(app.router, "POST", "/v2/{project_id}/servers", create_server)
    route(app.router, "GET", "/v2/{project_id}/servers/{server_id}", show_server)
    route(app.router, "DELETE", "/v2/{project_id}/servers/{server_id}", delete_server)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _fault(resp, name: str, status: int, fmt: str = "json") -> str:
    assert resp.status == status
    raw = await resp.read()
    if fmt == "json":
        assert resp.headers["Content-Type"] == "application/json"
        body = msgspec.json.decode(raw)
        assert list(body) == [name]
        assert body[name]["code"] == status
        return body[name]["message"]
    assert resp.headers["Content-Type"] == "application/xml; charset=UTF-8"
    root = parse(raw)
    assert root.tag == f"{{{V2}}}{name}"
    assert root.get("code") == str(status)
    return root.findtext(f"{{{V2}}}message")


async def test_success_in_both_formats(client: TestClient) -> None:
    resp = await client.get("/v2/p/servers/abc")
    assert resp.status == 200
    assert await resp.json() == {"server": {"id": "abc"}}
    resp = await client.get("/v2/p/servers/abc", headers={"Accept": "application/xml"})
    assert parse(await resp.read()).get("id") == "abc"


async def test_xml_request_json_response_and_back(client: TestClient) -> None:
    """Section 3.4: the request and response formats are independent."""
    xml_body = '<server name="webserver" imageRef="5579" flavorRef="100"/>'
    resp = await client.post("/v2/p/servers", data=xml_body,
                             headers={"Content-Type": "application/xml", "Accept": "application/json"})
    assert resp.status == 202
    assert resp.headers["Location"] == "http://x/servers/1"
    assert await resp.json() == {"server": {"name": "webserver", "imageRef": "5579", "flavorRef": "100"}}
    resp = await client.post("/v2/p/servers.xml", data=b'{"server": {"name": "dbserver"}}',
                             headers={"Content-Type": "application/json", "Accept": "*/*"})
    assert resp.status == 202
    assert parse(await resp.read()).get("name") == "dbserver"


async def test_domain_error_is_rendered(client: TestClient) -> None:
    message = await _fault(await client.get("/v2/p/servers/missing"), "itemNotFound", 404)
    assert message == "Instance missing could not be found."
    message = await _fault(await client.get("/v2/p/servers/missing.xml"), "itemNotFound", 404, "xml")
    assert message == "Instance missing could not be found."


async def test_over_limit_has_retry_after(client: TestClient) -> None:
    resp = await client.get("/v2/p/servers/limited", headers={"Accept": "application/xml"})
    await _fault(resp, "overLimit", 413, "xml")
    assert resp.headers["Retry-After"] == "17"


async def test_unsupported_content_type_is_415(client: TestClient) -> None:
    resp = await client.post("/v2/p/servers", data=b'{"server": {}}', headers={"Content-Type": "text/plain"})
    message = await _fault(resp, "badMediaType", 415)
    assert "text/plain" in message


async def test_malformed_json_is_400(client: TestClient) -> None:
    resp = await client.post("/v2/p/servers", data=b'{"server": ', headers={"Content-Type": "application/json"})
    assert await _fault(resp, "badRequest", 400) == "Malformed request body"


async def test_wrong_root_and_bad_xml_are_400_in_xml(client: TestClient) -> None:
    resp = await client.post("/v2/p/servers.xml", data=b'{"flavor": {}}',
                             headers={"Content-Type": "application/json"})
    assert await _fault(resp, "badRequest", 400, "xml") == "Malformed request body"
    resp = await client.post("/v2/p/servers", data=b"<server><name>x</server>",
                             headers={"Content-Type": "application/xml", "Accept": "application/xml"})
    assert await _fault(resp, "badRequest", 400, "xml") == "Malformed request body"


async def test_unknown_route_is_404_item_not_found_in_suffix_format(client: TestClient) -> None:
    resp = await client.get("/v2/p/nothing/here.xml", headers={"Accept": "application/json"})
    await _fault(resp, "itemNotFound", 404, "xml")
    resp = await client.get("/v2/p/nothing/here", headers={"Accept": "application/xml"})
    await _fault(resp, "itemNotFound", 404, "xml")
    await _fault(await client.get("/v2/p/nothing/here"), "itemNotFound", 404)


async def test_wrong_method_is_405_bad_method(client: TestClient) -> None:
    resp = await client.put("/v2/p/servers/abc.xml")
    await _fault(resp, "badMethod", 405, "xml")
    assert resp.headers["Allow"] == "DELETE, GET"
    await _fault(await client.patch("/v2/p/servers"), "badMethod", 405)


async def test_body_over_client_max_size_is_413_over_limit(client: TestClient) -> None:
    resp = await client.post("/v2/p/servers", data=b'{"server": {"name": "' + b"x" * 2048 + b'"}}',
                             headers={"Content-Type": "application/json"})
    assert await _fault(resp, "overLimit", 413) == "Request body is too large."


async def test_unexpected_exception_is_logged_500_without_leaking(client: TestClient) -> None:
    with structlog.testing.capture_logs() as logs:
        resp = await client.get("/v2/p/servers/boom", headers={"Accept": "application/xml"})
        raw = await resp.read()
    message = await _fault(resp, "computeFault", 500, "xml")
    assert "erred" in message
    assert b"hunter2" not in raw and b"RuntimeError" not in raw
    (entry,) = [e for e in logs if e["event"] == "api.unhandled_error"]
    assert entry["log_level"] == "error"
    assert entry["exc_info"] is True
    assert entry["path"] == "/v2/p/servers/boom"


async def test_aiohttp_http_errors_map_to_faults(client: TestClient) -> None:
    await _fault(await client.get("/v2/p/servers/http"), "conflictingRequest", 409)
    resp = await client.get("/v2/p/servers/token")
    await _fault(resp, "unauthorized", 401)
    assert resp.headers["WWW-Authenticate"] == 'Keystone uri="http://id"'
    resp = await client.get("/v2/p/servers/gone.xml")
    assert await _fault(resp, "badRequest", 410, "xml") == "Gone"
    resp = await client.get("/v2/p/servers/redirect", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/elsewhere"


async def test_no_content(client: TestClient) -> None:
    resp = await client.delete("/v2/p/servers/abc.xml")
    assert resp.status == 204
    assert await resp.read() == b""
    assert "Content-Type" not in resp.headers


@represented
async def create_image(request: web.Request) -> View:
    return View(None, 202, {"Location": "http://x/images/1"})


async def test_accepted_without_body_on_the_wire() -> None:
    app = web.Application(middlewares=[fault_middleware])
    route(app.router, "POST", "/v2/{project_id}/servers/{server_id}/action", create_image)
    async with TestClient(TestServer(app)) as client:
        resp = await client.post("/v2/p/servers/s/action.xml", json={"createImage": {"name": "n"}})
        assert resp.status == 202
        assert resp.headers["Location"] == "http://x/images/1"
        assert resp.headers["Content-Length"] == "0"
        assert "Content-Type" not in resp.headers
        assert await resp.read() == b""
