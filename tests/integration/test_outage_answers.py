"""With its database unreachable, the API answers 503 serviceUnavailable with
Retry-After, in the fault format asked for, quickly, and never a 500 (real
PostgreSQL and RabbitMQ for everything but the database that is "down": a pool on
a port nothing listens on, as after ``pg_ctl stop``)."""

from __future__ import annotations

import time

import pytest
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree

from deploy.local.infra import free_ports
from services.api.app import create_compute_app
from services.api.identity import IdentitySettings, create_identity_app
from services.api.settings import ApiSettings, Settings
from shared.config import AmqpSettings, DatabaseSettings, LogSettings
from shared.db.pool import create_pool
from shared.outbox import Relay

NS = "http://docs.openstack.org/compute/api/v2"


@pytest.fixture
async def down_pool():
    port = free_ports(1)[0]
    pool = await create_pool(DatabaseSettings(url=f"postgresql://n:n@127.0.0.1:{port}/n",
                                              pool_min=0, connect_timeout_s=2,
                                              acquire_timeout_s=2))
    yield pool
    await pool.close()



async def test_compute_answers_503_while_the_database_is_down(down_pool, rpc, amqp_url):
    settings = Settings(database=DatabaseSettings(), amqp=AmqpSettings(url=amqp_url),
                        log=LogSettings(), api=ApiSettings(),
                        identity=IdentitySettings(token_purge_interval_s=0))
    app = create_compute_app(settings, down_pool, rpc, Relay(down_pool, rpc))
    async with TestClient(TestServer(app)) as client:
        for path, method in (("/v2/demo/servers", "GET"), ("/v2/demo/servers", "POST"),
                             ("/v2/demo/servers/x/action", "POST")):
            started = time.monotonic()
            r = await client.request(method, path, headers={"X-Auth-Token": "t"},
                                     json={"server": {"name": "x"}})
            assert r.status == 503, await r.text()
            assert time.monotonic() - started < 10
            assert r.headers["Retry-After"] == "5"
            fault = (await r.json())["serviceUnavailable"]
            assert fault == {"code": 503,
                             "message": "The database is unavailable; try again later."}
            assert "127.0.0.1" not in fault["message"] and "Connect" not in fault["message"]
        r = await client.get("/v2/demo/flavors.xml", headers={"X-Auth-Token": "t"})
        assert r.status == 503
        root = etree.fromstring(await r.read())
        assert root.tag == f"{{{NS}}}serviceUnavailable" and root.get("code") == "503"


async def test_identity_answers_503_while_the_database_is_down(down_pool):
    app = create_identity_app(down_pool, IdentitySettings(token_purge_interval_s=0))
    async with TestClient(TestServer(app)) as client:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "demo", "domain": {"id": "default"}, "password": "demo"}}}}}
        r = await client.post("/v3/auth/tokens", json=body)
        assert r.status == 503, await r.text()
        assert r.headers["Retry-After"] == "5"
        error = (await r.json())["error"]
        assert error["code"] == 503 and error["title"] == "Service Unavailable"
        r = await client.get("/v3/auth/tokens", headers={"X-Auth-Token": "t",
                                                         "X-Subject-Token": "t"})
        assert r.status == 503
