"""``GET /metrics`` after a boot: the API's (no token) and the workers' (on their
health ports) show the families with the boot counted. The compute API's route
templates end in ``{fmt}`` (its optional ``.json``/``.xml``)."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.acting import active_server, delete_and_wait, host_of
from tests.e2e.client import Cloud, eventually
from tests.e2e.projects import new_project


async def _scrape(cloud: Cloud, url: str) -> dict[str, list[Any]]:
    """The samples of every family at ``url``, by family name."""
    async with cloud.session.get(url) as r:
        assert r.status == 200, await r.text()
        text = await r.text()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def _value(families: dict[str, list[Any]], sample: str, **labels: str) -> float:
    """The sum of ``sample``'s values whose labels include ``labels``."""
    family = sample.removesuffix("_total").removesuffix("_count")
    return sum(s.value for s in families.get(family, ())
               if s.name == sample and labels.items() <= s.labels.items())


def _worker_metrics_url(cloud: Cloud, name: str) -> str:
    return cloud.stack.services[name].health_url.removesuffix("/healthz") + "/metrics"


async def _scrape_service(cloud: Cloud, service: str) -> dict[str, list[Any]]:
    """Every process of ``service`` scraped on its own health port, samples merged:
    with replicas (NIMBUS_E2E_REPLICAS) the request or message went to one of them.
    A lone API process's health URL is its API port's."""
    merged: dict[str, list[Any]] = {}
    for name in cloud.processes(service):
        for family, samples in (await _scrape(cloud, _worker_metrics_url(cloud, name))).items():
            merged.setdefault(family, []).extend(samples)
    return merged


async def test_metrics_show_a_boot_on_the_api_and_the_workers(cloud):
    api, _ = await new_project(cloud)
    sid = await active_server(api, name="metrics")
    try:
        shared_port = await _scrape(cloud, cloud.api_url + "/metrics")  # no token
        assert _value(shared_port, "nimbus_db_pool_max_connections") >= 1
        metrics = await _scrape_service(cloud, "api")
        assert _value(metrics, "nimbus_http_requests_total", app="compute",
                      route="/v2/{project_id}/servers{fmt}", method="POST", status="202") >= 1
        assert _value(metrics, "nimbus_http_request_duration_seconds_count", app="compute",
                      route="/v2/{project_id}/servers/{server_id}{fmt}", method="GET") >= 1
        assert _value(metrics, "nimbus_http_requests_total", app="identity") >= 1
        assert _value(metrics, "nimbus_servers", status="ACTIVE") >= 1
        assert _value(metrics, "nimbus_rpc_sent_total", kind="cast", outcome="ok") >= 1
        assert _value(metrics, "nimbus_db_pool_max_connections") >= 1
        assert _value(metrics, "nimbus_queue_consumers", queue="scheduler") >= 1
        host = await host_of(cloud, sid)
        assert _value(metrics, "nimbus_compute_host_heartbeat_age_seconds", host=host) >= 0
        assert any(s.labels["host"] == host
                   for s in metrics["nimbus_compute_host_heartbeat_age_seconds"])

        # The agent counts the build once it recorded it, just after the API can show it.
        async def agent_counted() -> dict[str, list[Any]] | None:
            got = await _scrape(cloud, _worker_metrics_url(cloud, host))
            done = _value(got, "nimbus_operations_total", operation="build", outcome="success")
            return got if done >= 1 else None
        agent = await eventually(agent_counted)
        assert _value(agent, "nimbus_operation_duration_seconds_count", operation="build",
                      outcome="success") >= 1
        assert _value(agent, "nimbus_rpc_handled_total", kind="cast", message="build_server",
                      outcome="ok") >= 1
        assert _value(agent, "nimbus_rpc_sent_total", kind="call", outcome="ok") >= 1
        assert _value(agent, "nimbus_db_pool_connections") >= 1

        scheduler = await _scrape_service(cloud, "scheduler")
        assert _value(scheduler, "nimbus_rpc_handled_total", outcome="ok") >= 1
        assert "nimbus_rpc_dead_lettered" in scheduler
        for worker in ("network", "volume"):
            assert _value(await _scrape_service(cloud, worker),
                          "nimbus_db_pool_max_connections") >= 1, worker
        # The console proxy counts the requests to its own port (with replicas the
        # stack polls each one's health port instead, so ask the shared one once).
        proxy_url = cloud.stack.services["consoleproxy"].env_extra["NIMBUS_CONSOLEPROXY_PUBLIC_URL"]
        async with cloud.session.get(proxy_url + "/healthz") as r:
            assert r.status == 200
        proxy = await _scrape_service(cloud, "consoleproxy")
        assert _value(proxy, "nimbus_http_requests_total", app="consoleproxy", route="/healthz",
                      status="200") >= 1
    finally:
        await delete_and_wait(api, sid)
