"""Tokens on the compute API: v2.0 and v3 tokens work, anything else is refused."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from lxml import etree

from tests.e2e.client import NS


async def test_v3_token_and_catalog(cloud):
    token, body = await cloud.v3_token("demo", "demo", "demo")
    project_id = body["token"]["project"]["id"]
    compute = [e for e in body["token"]["catalog"] if e["type"] == "compute"]
    assert len(compute) == 1 and compute[0]["name"] == "Compute"
    urls = {e["interface"]: e["url"] for e in compute[0]["endpoints"]}
    assert urls == {i: f"{cloud.api_url}/v2/{project_id}" for i in ("public", "internal", "admin")}
    assert {e["type"] for e in body["token"]["catalog"]} == {"compute", "identity", "image", "network", "block-storage", "volumev3"}
    r = await cloud.request("GET", f"/v2/{project_id}/flavors", token=token)
    assert r.status == 200


async def test_v2_token_works_on_compute(cloud):
    access = (await cloud.v2_token("alt", "alt", "alt"))["access"]
    compute = [e for e in access["serviceCatalog"] if e["type"] == "compute"][0]
    endpoint = compute["endpoints"][0]
    assert endpoint["region"] == "region-a"
    assert endpoint["publicURL"] == f"{cloud.api_url}/v2/{access['token']['tenant']['id']}"
    r = await cloud.request("GET", endpoint["publicURL"].removeprefix(cloud.api_url) + "/servers",
                            token=access["token"]["id"])
    assert r.status == 200 and isinstance(r.json["servers"], list)


async def test_missing_and_unknown_token_are_401(demo, cloud):
    r = await cloud.request("GET", demo.path("/servers"))
    assert r.status == 401 and r.json["unauthorized"]["code"] == 401
    r = await cloud.request("GET", demo.path("/servers"), token="not-a-token")
    assert r.status == 401
    r = await cloud.request("GET", demo.path("/servers.xml"), token="not-a-token")
    assert r.status == 401
    assert etree.QName(r.xml) == etree.QName(NS, "unauthorized")


async def test_expired_token_is_401(cloud):
    api = await cloud.login("demo", "demo", "demo")
    assert (await api.get("/flavors")).status == 200
    conn = await cloud.db()
    try:
        # Age this one token past its expiry (tokens are stored as SHA-256 digests).
        digest = hashlib.sha256(api.token.encode()).digest()
        n = await conn.execute("UPDATE tokens SET expires_at = $2 WHERE token_hash = $1",
                               digest, datetime.now(UTC) - timedelta(seconds=1))
        assert n == "UPDATE 1"
    finally:
        await conn.close()
    r = await api.get("/flavors")
    assert r.status == 401


async def test_other_projects_path_is_refused(demo, alt, cloud):
    r = await cloud.request("GET", f"/v2/{alt.project_id}/servers", token=demo.token)
    assert r.status in (401, 403)
    r = await cloud.request("GET", f"/v2/{alt.project_id}/flavors", token=demo.token)
    assert r.status in (401, 403)


async def test_version_discovery_is_public(cloud):
    r = await cloud.request("GET", "/")
    assert r.status == 200
    versions = r.json["versions"]
    assert versions[0]["id"] == "v2.0" and versions[0]["status"] == "CURRENT"
    self_href = [l["href"] for l in versions[0]["links"] if l["rel"] == "self"][0]
    r = await cloud.request("GET", self_href.removeprefix(cloud.api_url))
    assert r.status == 200 and r.json["version"]["id"] == "v2.0"
    assert r.json["version"]["version"] == "" and r.json["version"]["min_version"] == ""
