"""What a user's client does, and no more: a token from identity, the endpoints
from its catalog, requests with the token. Nothing here reaches a database or a
service's insides, so the smoke suite runs against any Nimbus cloud."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

# The catalog's types the smoke suite calls, as CONTRACT.md names them.
SERVICE_TYPES = ("compute", "image", "network")


@dataclass(frozen=True)
class Target:
    """A cloud's identity endpoint and one user's credentials.

    ``auth_url`` is the one clients are given (``OS_AUTH_URL``), with or
    without its version: ``http://127.0.0.1:5000/v3`` or ``http://127.0.0.1:5000``.
    """

    auth_url: str
    user: str
    password: str
    project: str

    @property
    def identity_root(self) -> str:
        url = self.auth_url.rstrip("/")
        for version in ("/v3", "/v2.0"):
            url = url.removesuffix(version)
        return url

    def v3_body(self, password: str | None = None) -> dict:
        return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": self.user, "domain": {"id": "default"},
            "password": self.password if password is None else password}}},
            "scope": {"project": {"name": self.project, "domain": {"id": "default"}}}}}

    def v2_body(self, password: str | None = None) -> dict:
        return {"auth": {"passwordCredentials": {
            "username": self.user, "password": self.password if password is None else password},
            "tenantName": self.project}}


@dataclass
class Reply:
    status: int
    headers: Any
    json: Any


async def call(http: aiohttp.ClientSession, method: str, url: str, *, token: str | None = None,
               json: Any = None) -> Reply:
    headers = {"X-Auth-Token": token} if token else {}
    async with http.request(method, url, json=json, headers=headers) as r:
        body = await r.json() if r.content_type == "application/json" else None
        return Reply(r.status, r.headers, body)


@dataclass
class User:
    """A v3 token of the target's user and the public endpoints of its catalog."""

    http: aiohttp.ClientSession
    token: str
    project_id: str
    endpoints: dict[str, str]

    @classmethod
    async def login(cls, http: aiohttp.ClientSession, target: Target) -> User:
        r = await call(http, "POST", f"{target.identity_root}/v3/auth/tokens",
                       json=target.v3_body())
        assert r.status == 201, (r.status, r.json)
        body = r.json["token"]
        endpoints = {}
        for entry in body["catalog"]:
            public = [e["url"] for e in entry["endpoints"] if e["interface"] == "public"]
            if entry["type"] in SERVICE_TYPES and public:
                endpoints[entry["type"]] = public[0].rstrip("/")
        return cls(http, r.headers["X-Subject-Token"], body["project"]["id"], endpoints)

    async def compute(self, method: str, path: str, json: Any = None) -> Reply:
        """``path`` under the catalog's compute URL (``.../v2/{project_id}``)."""
        return await call(self.http, method, self.endpoints["compute"] + path,
                          token=self.token, json=json)

    async def service(self, kind: str, path: str) -> Reply:
        return await call(self.http, "GET", self.endpoints[kind] + path, token=self.token)

    async def server(self, sid: str) -> dict | None:
        """The server's detail, or None once it is gone (404)."""
        r = await self.compute("GET", f"/servers/{sid}")
        if r.status == 404:
            return None
        assert r.status == 200, (r.status, r.json)
        return r.json["server"]
