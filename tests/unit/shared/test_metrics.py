"""shared.metrics: the HTTP middleware's labels, message types, /metrics and its refreshers.

The families live in the process's one registry, which other tests feed too, so
each test reads a counter before and after and asserts the difference.
"""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from shared import metrics


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text=request.match_info["server_id"])


async def _teapot(_request: web.Request) -> web.Response:
    raise web.HTTPConflict()


async def _bug(_request: web.Request) -> web.Response:
    raise ZeroDivisionError


@pytest.fixture
async def client():
    app = web.Application(middlewares=[metrics.http_metrics_mw("unit")])
    app.router.add_get("/v2/{project_id}/servers/{server_id}", _ok)
    app.router.add_post("/v2/{project_id}/servers/{server_id}/action", _teapot)
    app.router.add_get("/bug", _bug)
    app.router.add_get("/metrics", metrics.metrics_handler())
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_requests_are_counted_by_route_template_never_the_raw_path(client):
    route = "/v2/{project_id}/servers/{server_id}"
    before = _value("nimbus_http_requests_total", app="unit", route=route, method="GET",
                    status="200")
    for sid in ("a", "b", "c"):
        assert (await client.get(f"/v2/p1/servers/{sid}")).status == 200
    assert _value("nimbus_http_requests_total", app="unit", route=route, method="GET",
                  status="200") == before + 3
    assert _value("nimbus_http_request_duration_seconds_count", app="unit", route=route,
                  method="GET") >= 3
    assert _value("nimbus_http_requests_total", app="unit", route="/v2/p1/servers/a",
                  method="GET", status="200") == 0


async def test_faults_raised_and_unmatched_paths_keep_their_status_and_a_bounded_route(client):
    def count(route: str, method: str, status: str) -> float:
        return _value("nimbus_http_requests_total", app="unit", route=route, method=method,
                      status=status)
    action = "/v2/{project_id}/servers/{server_id}/action"
    before = (count(action, "POST", "409"), count("unmatched", "GET", "404"),
              count("/bug", "GET", "500"))
    assert (await client.post("/v2/p1/servers/x/action")).status == 409
    assert (await client.get("/no/such/path/123")).status == 404
    assert (await client.get("/bug")).status == 500
    after = (count(action, "POST", "409"), count("unmatched", "GET", "404"),
             count("/bug", "GET", "500"))
    assert [a - b for a, b in zip(after, before)] == [1, 1, 1]


async def test_metrics_answers_the_text_format_with_the_families(client):
    await client.get("/v2/p1/servers/a")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    for name in ("nimbus_http_requests", "nimbus_http_request_duration_seconds",
                 "nimbus_rpc_sent", "nimbus_rpc_dead_lettered", "nimbus_operations",
                 "nimbus_db_pool_connections", "process_cpu_seconds"):
        assert name in families, name
    samples = families["nimbus_http_requests"].samples
    assert any(s.labels.get("route") == "/v2/{project_id}/servers/{server_id}" and s.value >= 1
               for s in samples)


class Tagless(msgspec.Struct):
    x: int = 0


class Tagged(msgspec.Struct, tag="build_server"):
    x: int = 0


def test_message_type_is_the_tag_from_a_struct_or_its_encoding():
    assert metrics.message_type(Tagged()) == "build_server"
    assert metrics.message_type_of(msgspec.json.encode(Tagged())) == "build_server"
    assert metrics.message_type(Tagless()) == "Tagless"
    assert metrics.message_type_of(b'{"type": "delete_server", "server_id": "x"}') == \
        "delete_server"
    assert metrics.message_type_of(b'{"x": 1}') == "unknown"
    assert metrics.message_type_of(b"not json") == "unknown"


def test_queue_kind_drops_the_host():
    assert metrics.queue_kind("compute.node-7") == "compute"
    assert metrics.queue_kind("network.floating") == "network.floating"


async def test_a_failing_or_slow_refresher_is_counted_and_the_others_still_run(monkeypatch):
    monkeypatch.setattr(metrics, "REFRESH_TIMEOUT_S", 0.05)
    ran: list[str] = []
    never = asyncio.Event()

    async def good() -> None:
        ran.append("good")

    async def broken() -> None:
        raise ConnectionRefusedError

    async def stuck() -> None:
        await never.wait()

    before = [_value("nimbus_metrics_refresh_failures_total", source=s)
              for s in ("broken", "stuck", "good")]
    await metrics.refresh({"good": good, "broken": broken, "stuck": stuck})
    after = [_value("nimbus_metrics_refresh_failures_total", source=s)
             for s in ("broken", "stuck", "good")]
    assert ran == ["good"]
    assert [a - b for a, b in zip(after, before)] == [1, 1, 0]
