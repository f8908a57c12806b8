"""Links and ``Location`` come from the configured public URLs, never from the
request's ``Host`` header; with none configured, the request's URL is the
documented fallback. The compute and identity apps run in-process on a real
PostgreSQL and RabbitMQ (a create's cast is published; nothing consumes it)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.app import create_compute_app
from services.api.catalog import CIRROS_IMAGE_ID, bootstrap_catalog
from services.api.identity import (
    IdentitySettings,
    bootstrap_identity,
    create_identity_app,
)
from services.api.settings import ApiSettings, Settings
from shared.config import AmqpSettings, DatabaseSettings, LogSettings
from shared.db.pool import create_pool
from shared.image_store import ImageStore
from shared.outbox import Relay
from shared.rpc import RpcClient

FORGED = {"Host": "evil.example:666", "X-Forwarded-Host": "evil.example",
          "X-Forwarded-Proto": "https"}
IMAGE_URL = "https://image.example.com:9292"
NETWORK_URL = "https://network.example.com:9696"
VOLUME_URL = "https://volume.example.com:8776"
COMPUTE_URL = "https://compute.example:8443/nova"
IDENTITY_URL = "https://keystone.example/identity"


@pytest.fixture
async def pool(db_url: str, tmp_path) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(DatabaseSettings(url=db_url, pool_min=1, pool_max=4))
    async with p.acquire() as conn:
        await bootstrap_identity(conn, IdentitySettings())
        await bootstrap_catalog(conn, ImageStore(str(tmp_path)))
    yield p
    await p.close()



Start = Callable[[str], Awaitable[tuple[TestClient, str, str]]]


@pytest.fixture
async def compute(pool: asyncpg.Pool, rpc: RpcClient, db_url: str,
                  amqp_url: str) -> AsyncIterator[Start]:
    """``start(public_url)``: a compute app, a demo token and the demo project's id."""
    clients: list[TestClient] = []
    identity = TestClient(TestServer(create_identity_app(pool, IdentitySettings(
        token_purge_interval_s=0))))
    await identity.start_server()
    resp = await identity.post("/v2.0/tokens", json={"auth": {"passwordCredentials": {
        "username": "demo", "password": "demo"}, "tenantName": "demo"}})
    access = (await resp.json())["access"]

    async def start(public_url: str) -> tuple[TestClient, str, str]:
        settings = Settings(database=DatabaseSettings(url=db_url),
                            amqp=AmqpSettings(url=amqp_url), log=LogSettings(),
                            api=ApiSettings(public_url=public_url),
                            identity=IdentitySettings())
        client = TestClient(TestServer(create_compute_app(settings, pool, rpc, Relay(pool, rpc))))
        await client.start_server()
        clients.append(client)
        return client, access["token"]["id"], access["token"]["tenant"]["id"]

    yield start
    for client in clients:
        await client.close()
    await identity.close()


def _hrefs(data: Any) -> list[str]:
    """Every ``href`` in a JSON body, however deep."""
    if isinstance(data, dict):
        return [v for k, v in data.items() if k == "href"] + [
            h for v in data.values() for h in _hrefs(v)]
    if isinstance(data, list):
        return [h for v in data for h in _hrefs(v)]
    return []


async def test_compute_links_and_locations_use_the_public_url(compute: Start) -> None:
    client, token, project = await compute(COMPUTE_URL + "/")
    auth = {**FORGED, "X-Auth-Token": token}
    seen: list[str] = []
    for path, headers in [("/", FORGED), ("/v2/", FORGED), (f"/v2/{project}", auth),
                          (f"/v2/{project}/flavors?limit=2", auth),
                          (f"/v2/{project}/flavors/detail?limit=2", auth),
                          (f"/v2/{project}/flavors/100", auth),
                          (f"/v2/{project}/images/detail?limit=1", auth)]:
        resp = await client.get(path, headers=headers)
        assert resp.status == 200, (path, await resp.text())
        seen += _hrefs(await resp.json())
    resp = await client.post(f"/v2/{project}/servers", headers=auth, json={"server": {
        "name": "linked", "flavorRef": "100", "imageRef": str(CIRROS_IMAGE_ID)}})
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    sid = body["server"]["id"]
    assert resp.headers["Location"] == f"{COMPUTE_URL}/v2/{project}/servers/{sid}"
    seen += _hrefs(body)
    resp = await client.get(f"/v2/{project}/servers/detail.xml?limit=1", headers=auth)
    xml = await resp.text()
    assert resp.status == 200 and f'href="{COMPUTE_URL}/v2/{project}/servers/{sid}"' in xml

    assert len(seen) > 20
    assert [h for h in seen if not h.startswith((COMPUTE_URL + "/", "http://docs.openstack"))] \
        == []
    assert any("marker=" in h for h in seen)  # next links were among them
    assert "evil" not in xml


async def test_without_a_public_url_links_follow_the_request(compute: Start) -> None:
    client, _, _ = await compute("")
    resp = await client.get("/", headers={"Host": "api.internal:8774"})
    assert _hrefs(await resp.json()) == ["http://api.internal:8774/v2/"]


async def test_identity_links_and_catalog_use_the_public_urls(pool: asyncpg.Pool) -> None:
    settings = IdentitySettings(public_url=IDENTITY_URL, compute_public_url=COMPUTE_URL,
                                image_public_url=IMAGE_URL, network_public_url=NETWORK_URL,
                                block_storage_public_url=VOLUME_URL,
                                token_purge_interval_s=0)
    async with TestClient(TestServer(create_identity_app(pool, settings))) as client:
        texts = []
        for path in ("/", "/v3", "/v2.0"):
            resp = await client.get(path, headers=FORGED)
            texts.append(await resp.text())
        resp = await client.post("/v3/auth/tokens", headers=FORGED, json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "demo", "domain": {"id": "default"}, "password": "demo"}}},
            "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}})
        token = resp.headers["X-Subject-Token"]
        texts.append(await resp.text())
        for path in ("/v3/auth/projects", "/v3/auth/catalog"):
            resp = await client.get(path, headers={**FORGED, "X-Auth-Token": token})
            texts.append(await resp.text())
        resp = await client.get("/v3/auth/projects", headers=FORGED)
        assert resp.headers["WWW-Authenticate"] == f'Keystone uri="{IDENTITY_URL}"'
    urls = [u for text in texts for u in _urls(json.loads(text))]
    assert len(urls) > 10
    # The image and network endpoints are named bare (clients discover their versions).
    assert [u for u in urls if not u.startswith((IDENTITY_URL + "/", COMPUTE_URL + "/",
                                                 VOLUME_URL + "/v3/",
                                                 "https://docs.openstack.org"))
            and u not in (IMAGE_URL, NETWORK_URL)] == []
    assert {IMAGE_URL, NETWORK_URL} <= set(urls)
    assert not any("evil" in text for text in texts)


def _urls(data: Any) -> list[str]:
    """Every string in a JSON body that looks like a URL."""
    if isinstance(data, dict):
        return [u for v in data.values() for u in _urls(v)]
    if isinstance(data, list):
        return [u for v in data for u in _urls(v)]
    return [data] if isinstance(data, str) and "://" in data else []
