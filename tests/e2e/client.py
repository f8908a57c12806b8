"""A small HTTP client for the e2e tests: JSON or XML in, parsed bodies out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import asyncpg
from lxml import etree

from deploy.local.hypervisor import stop_guests
from deploy.local.supervisor import Stack

T = TypeVar("T")

NS = "http://docs.openstack.org/compute/api/v2"
ATOM = "http://www.w3.org/2005/Atom"


@dataclass
class Response:
    status: int
    headers: Any
    raw: bytes
    json: Any = None
    xml: Any = None  # lxml root element


@dataclass
class Cloud:
    api_url: str
    identity_url: str
    db_url: str
    stack: Stack
    image_url: str = ""
    network_url: str = ""
    block_storage_url: str = ""
    session: aiohttp.ClientSession = field(init=False)

    async def open(self) -> None:
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self.session.close()

    async def db(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.db_url)

    def processes(self, service: str) -> list[str]:
        """The stack's process names running ``service``: itself and its replicas
        (``<service>-2``...), when the stack runs several."""
        return [n for n in self.stack.services
                if n == service or (n.startswith(f"{service}-") and n[len(service) + 1:].isdigit())]

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """One value from the stack's database, on a connection of its own."""
        conn = await self.db()
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def v3_token(self, user: str, password: str, project: str) -> tuple[str, dict]:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
        async with self.session.post(f"{self.identity_url}/v3/auth/tokens", json=body) as r:
            assert r.status == 201, await r.text()
            return r.headers["X-Subject-Token"], await r.json()

    async def v2_token(self, user: str, password: str, project: str) -> dict:
        body = {"auth": {"passwordCredentials": {"username": user, "password": password},
                         "tenantName": project}}
        async with self.session.post(f"{self.identity_url}/v2.0/tokens", json=body) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def login(self, user: str, password: str, project: str) -> Api:
        token, body = await self.v3_token(user, password, project)
        return Api(self, token, body["token"]["project"]["id"])

    async def request(self, method: str, path: str, *, token: str | None = None,
                      json: Any = None, data: bytes | str | None = None,
                      headers: dict[str, str] | None = None, xml: bool = False,
                      base: str | None = None) -> Response:
        """``method path`` on the compute API, or on ``base`` (``cloud.image_url``...)."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs.setdefault("X-Auth-Token", token)
        if xml:
            hdrs.setdefault("Accept", "application/xml")
        async with self.session.request(method, (base or self.api_url) + path, json=json, data=data,
                                        headers=hdrs) as r:
            raw = await r.read()
            resp = Response(r.status, r.headers, raw)
            ctype = r.headers.get("Content-Type", "")
            if raw and ctype.startswith("application/json"):
                resp.json = await r.json()
            elif raw and "xml" in ctype:
                resp.xml = etree.fromstring(raw)
            return resp


@dataclass
class Api:
    """Requests of one user of one project."""

    cloud: Cloud
    token: str
    project_id: str

    def path(self, rest: str) -> str:
        return f"/v2/{self.project_id}{rest}"

    async def get(self, rest: str, **kw: Any) -> Response:
        return await self.cloud.request("GET", self.path(rest), token=self.token, **kw)

    async def post(self, rest: str, **kw: Any) -> Response:
        return await self.cloud.request("POST", self.path(rest), token=self.token, **kw)

    async def delete(self, rest: str, **kw: Any) -> Response:
        return await self.cloud.request("DELETE", self.path(rest), token=self.token, **kw)

    async def boot(self, name: str = "e2e", flavor: str = "100", image: str | None = None,
                   **extra: Any) -> Response:
        from services.api.catalog import CIRROS_IMAGE_ID
        body = {"server": {"name": name, "imageRef": image or str(CIRROS_IMAGE_ID),
                           "flavorRef": flavor, **extra}}
        return await self.post("/servers", json=body)

    async def server(self, sid: str) -> dict | None:
        r = await self.get(f"/servers/{sid}")
        if r.status == 404:
            return None
        assert r.status == 200, r.raw
        return r.json["server"]

    async def wait_status(self, sid: str, done: Callable[[dict | None], bool],
                          timeout: float = 30.0) -> tuple[dict | None, list[str]]:
        """Poll the server until ``done(server)``; return it and every status seen."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            server = await self.server(sid)
            status = server["status"] if server else "GONE"
            if not seen or seen[-1] != status:
                seen.append(status)
            if done(server):
                return server, seen
            if time.monotonic() > deadline:
                raise AssertionError(f"server {sid} still {status} after {timeout} s; saw {seen}")
            await asyncio.sleep(0.05)


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 20.0,
                     interval: float = 0.1) -> T:
    """Await ``check()`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {result!r})")
        await asyncio.sleep(interval)


@asynccontextmanager
async def running_cloud(env: dict[str, str], run_dir: Path,
                        replicas: dict[str, int] | None = None,
                        compute_hosts: int | None = None) -> AsyncIterator[Cloud]:
    """Every service as its own process on ``env``'s database and broker, bootstrapped,
    healthy, and a Cloud to reach it; everything stopped on exit. ``replicas``: how
    many processes of each service; ``compute_hosts``: how many compute hosts in all,
    split over the three agents (``deploy.local.supervisor.default_services``)."""
    import os
    import subprocess
    import sys

    from deploy.local.supervisor import ServicePorts, default_services

    env = dict(env)
    env.pop("NIMBUS_CONFIG", None)
    # Where make up keeps them, under the run directory: the fake hosts' guests
    # (tests read what each was given there), the libvirt hosts', the images, the
    # volumes.
    env.setdefault("NIMBUS_FAKE_STATE_DIR", str(run_dir / "guests"))
    env.setdefault("NIMBUS_LIBVIRT_STATE_DIR", str(run_dir / "libvirt"))
    env.setdefault("NIMBUS_IMAGES_DIR", str(run_dir / "images"))
    env.setdefault("NIMBUS_VOLUMES_DIR", str(run_dir / "volumes"))
    repo = Path(__file__).resolve().parents[2]
    ports = ServicePorts.free(replicas=sum(replicas.values()) if replicas else 0)
    stack = Stack(run_dir, env, default_services(env, ports=ports, replicas=replicas,
                                                    compute_hosts=compute_hosts), cwd=repo)
    api_url, identity_url = f"http://127.0.0.1:{ports.api}", f"http://127.0.0.1:{ports.identity}"
    boot_env = {**os.environ, **env, "NIMBUS_IDENTITY_COMPUTE_PUBLIC_URL": api_url,
                "NIMBUS_IDENTITY_PUBLIC_URL": identity_url}
    await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "services.api.manage",
                                             "bootstrap"], env=boot_env, cwd=repo, check=True)
    try:
        await asyncio.to_thread(stack.start)
        await asyncio.to_thread(stack.wait_healthy, 90)
        cloud = Cloud(api_url=api_url, identity_url=identity_url,
                      db_url=env["NIMBUS_DATABASE_URL"], stack=stack,
                      image_url=f"http://127.0.0.1:{ports.image}",
                      network_url=f"http://127.0.0.1:{ports.network}",
                      block_storage_url=f"http://127.0.0.1:{ports.block_storage}")
        await cloud.open()
        try:
            yield cloud
        finally:
            await cloud.close()
    finally:
        await asyncio.to_thread(stack.stop)
        # Real guests a failed test left go with the cloud, as with make down.
        await asyncio.to_thread(stop_guests, Path(env["NIMBUS_LIBVIRT_STATE_DIR"]))


@asynccontextmanager
async def fresh_cloud(infra: Any, template: str, name: str, settings: dict[str, str],
                      replicas: dict[str, int] | None = None,
                      compute_hosts: int | None = None) -> AsyncIterator[Cloud]:
    """:func:`running_cloud` with ``settings`` on a database cloned from the migrated
    ``template`` and a vhost of its own, both dropped afterwards."""
    import os
    import tempfile
    import uuid

    db_name = f"{name}_{uuid.uuid4().hex[:12]}"
    db_url = await infra.create_database(db_name, template=template)
    amqp_url = await infra.new_vhost()
    run_dir = Path(tempfile.mkdtemp(prefix=f"nimbus-{name}-"))
    env = {**os.environ, **settings, "NIMBUS_DATABASE_URL": db_url, "NIMBUS_AMQP_URL": amqp_url}
    try:
        async with running_cloud(env, run_dir, replicas, compute_hosts) as cloud:
            yield cloud
    finally:
        await infra.drop_vhost(amqp_url)
        await infra.drop_database(db_name)
