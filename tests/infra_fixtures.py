"""Real PostgreSQL and RabbitMQ for the tests: session fixtures and their helpers.

Where the servers come from, first match wins:

1. `NIMBUS_TEST_DATABASE_URL` and `NIMBUS_TEST_AMQP_URL` (both set): servers
   someone else runs.  The database URL must be allowed to CREATE DATABASE.
   Per-test vhosts need the management API (`NIMBUS_TEST_AMQP_MANAGEMENT_URL`,
   e.g. `http://guest:guest@host:15672`); without it every test shares the
   URL's vhost.
2. A Docker engine that answers, with testcontainers importable (and
   `NIMBUS_INFRA` not `local`): containers for the session.
3. Otherwise private instances of the installed servers (see
   `deploy/local/infra.py`) under a temporary directory, on free ports,
   removed at the end of the session; a watchdog process removes them too if
   pytest dies without tearing down.

Fixtures: `infra` (session), `migrated_template` (session), `db_url` and
`amqp_url` (one fresh database / vhost per test).  `tests/conftest.py`
re-exports them; another test tree (e.g. `benchmarks/`) can do the same with
`from tests.infra_fixtures import *`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg
import pytest

from deploy.local import infra as local_infra

__all__ = ["Infra", "infra", "migrated_template", "db_url", "amqp_url"]

REPO = Path(__file__).resolve().parents[1]
TEMPLATE_DB = "nimbus_template"


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


# --------------------------------------------------------------------------- vhosts


class _CtlVhosts:
    """Vhosts on a private node through rabbitmqctl, created and deleted in batches.

    Each rabbitmqctl run costs ~0.4 s, so vhosts are made eight at a time and
    dropped vhosts are deleted once eight have piled up (the node goes away
    with the session anyway).
    """

    batch = 8

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._free: list[str] = []
        self._doomed: list[str] = []

    def create(self) -> str:
        with self._lock:
            if not self._free:
                names = [f"t-{uuid.uuid4().hex[:12]}" for _ in range(self.batch)]
                local_infra.add_vhosts(self._root, names)
                self._free.extend(names)
            return self._free.pop()

    def delete(self, name: str) -> None:
        with self._lock:
            self._doomed.append(name)
            if len(self._doomed) >= self.batch:
                doomed, self._doomed = self._doomed, []
                local_infra.delete_vhosts(self._root, doomed)


class _HttpVhosts:
    """Vhosts through the RabbitMQ management HTTP API (containers, outside brokers)."""

    def __init__(self, management_url: str, user: str) -> None:
        parts = urlsplit(management_url)
        self._base = urlunsplit((parts.scheme, f"{parts.hostname}:{parts.port or 15672}", "/api", "", ""))
        creds = f"{unquote(parts.username or 'guest')}:{unquote(parts.password or 'guest')}"
        self._auth = "Basic " + base64.b64encode(creds.encode()).decode()
        self._user = user

    def _call(self, method: str, path: str, body: dict | None = None) -> None:
        req = urllib.request.Request(f"{self._base}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": self._auth,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30):
            pass

    def create(self) -> str:
        name = f"t-{uuid.uuid4().hex[:12]}"
        self._call("PUT", f"/vhosts/{quote(name, safe='')}", {})
        self._call("PUT", f"/permissions/{quote(name, safe='')}/{quote(self._user, safe='')}",
                   {"configure": ".*", "write": ".*", "read": ".*"})
        return name

    def delete(self, name: str) -> None:
        try:
            self._call("DELETE", f"/vhosts/{quote(name, safe='')}")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise


class _SharedVhost:
    """No way to make vhosts: every test gets the broker URL's own vhost."""

    def __init__(self, vhost: str) -> None:
        self._vhost = vhost
        warnings.warn("NIMBUS_TEST_AMQP_MANAGEMENT_URL not set: tests share one vhost", stacklevel=2)

    def create(self) -> str:
        return self._vhost

    def delete(self, name: str) -> None:
        pass


# --------------------------------------------------------------------------- Infra


class Infra:
    """Where the session's PostgreSQL and RabbitMQ are, and per-test isolation.

    Attributes:
        pg_admin_url: a URL whose role may CREATE DATABASE (and owns what it creates).
        amqp_url: the broker's default vhost.
        kind: "env", "docker" or "local".
    """

    def __init__(self, kind: str, pg_admin_url: str, amqp_url: str,
                 vhosts: _CtlVhosts | _HttpVhosts | _SharedVhost,
                 close: Callable[[], None] = lambda: None) -> None:
        self.kind, self.pg_admin_url, self.amqp_url = kind, pg_admin_url, amqp_url
        self._vhosts = vhosts
        self._close = close

    def database_url(self, name: str) -> str:
        """The URL of database `name` on the session's server, as the admin role."""
        return _with_path(self.pg_admin_url, f"/{name}")

    async def create_database(self, name: str, template: str | None = None) -> str:
        """Create database `name` (a copy of `template` if given); return its URL."""
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        conn = await asyncpg.connect(self.pg_admin_url)
        try:
            for attempt in range(50):
                try:
                    await conn.execute(sql)
                    break
                except asyncpg.ObjectInUseError:
                    # The template's last session can take a moment to go away.
                    if attempt == 49:
                        raise
                    await asyncio.sleep(0.1)
        finally:
            await conn.close()
        return self.database_url(name)

    async def drop_database(self, name: str) -> None:
        """Drop database `name` if it exists, cutting off anyone still connected."""
        conn = await asyncpg.connect(self.pg_admin_url)
        try:
            for attempt in range(100):
                try:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    break
                except asyncpg.InsufficientPrivilegeError:
                    # An autovacuum worker (the superuser's) is in the database: the
                    # test role may not end it, but it ends soon by itself.
                    if attempt == 99:
                        raise
                    await asyncio.sleep(0.1)
        finally:
            await conn.close()

    async def new_vhost(self) -> str:
        """Make a fresh vhost the broker's user may use fully; return its amqp URL."""
        name = await asyncio.to_thread(self._vhosts.create)
        return _with_path(self.amqp_url, "/" + quote(name, safe=""))

    async def drop_vhost(self, url: str) -> None:
        """Delete the vhost of `url` (made by `new_vhost`) with all it holds."""
        name = unquote(urlsplit(url).path[1:])
        if name and name != "/":
            await asyncio.to_thread(self._vhosts.delete, name)

    def close(self) -> None:
        self._close()


def _from_env() -> Infra | None:
    db, amqp = os.environ.get("NIMBUS_TEST_DATABASE_URL"), os.environ.get("NIMBUS_TEST_AMQP_URL")
    if not (db and amqp):
        return None
    management = os.environ.get("NIMBUS_TEST_AMQP_MANAGEMENT_URL")
    user = unquote(urlsplit(amqp).username or "guest")
    vhosts = (_HttpVhosts(management, user) if management
              else _SharedVhost(unquote(urlsplit(amqp).path[1:]) or "/"))
    return Infra("env", db, amqp, vhosts)


def _docker_wanted() -> bool:
    if os.environ.get("NIMBUS_INFRA") == "local" or not local_infra.docker_answers():
        return False
    try:
        import testcontainers.core.container  # noqa: F401
    except ImportError:
        return False
    return True


def _wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f} s")
        time.sleep(0.5)


def _from_docker() -> Infra:
    from testcontainers.core.container import DockerContainer

    pg = (DockerContainer(local_infra.PG_IMAGE)
          .with_env("POSTGRES_USER", "nimbus").with_env("POSTGRES_PASSWORD", "nimbus")
          .with_env("POSTGRES_DB", "nimbus").with_exposed_ports(5432)
          .with_command("postgres -c fsync=off -c synchronous_commit=off "
                        "-c full_page_writes=off -c max_connections=300"))
    rabbit = DockerContainer(local_infra.RABBITMQ_IMAGE).with_exposed_ports(5672, 15672)
    started = []
    try:
        for c in (pg, rabbit):
            c.start()
            started.append(c)
        # The image's entrypoint runs a socket-only server while it initialises;
        # TCP inside the container answers only once the real one is up.
        _wait_until(lambda: pg.exec(["pg_isready", "-h", "127.0.0.1", "-U", "nimbus"]).exit_code == 0,
                    120, "postgres container")
        _wait_until(lambda: rabbit.exec(["rabbitmqctl", "await_startup"]).exit_code == 0,
                    180, "rabbitmq container")
    except BaseException:
        for c in started:
            c.stop()
        raise
    host = pg.get_container_host_ip()
    pg_url = f"postgresql://nimbus:nimbus@{host}:{pg.get_exposed_port(5432)}/nimbus"
    rhost = rabbit.get_container_host_ip()
    amqp = f"amqp://guest:guest@{rhost}:{rabbit.get_exposed_port(5672)}/"
    mgmt = f"http://guest:guest@{rhost}:{rabbit.get_exposed_port(15672)}"

    def close() -> None:
        for c in (rabbit, pg):
            c.stop()

    return Infra("docker", pg_url, amqp, _HttpVhosts(mgmt, "guest"), close)


def start_watchdog(root: Path) -> subprocess.Popen[bytes]:
    """A process that removes the servers under ``root`` once this one is gone, even
    if it is killed outright; kill it when the servers were cleaned up normally."""
    return subprocess.Popen(
        [sys.executable, "-m", "deploy.local.infra", "watchdog", "--pid", str(os.getpid()),
         "--root", str(root)],
        cwd=REPO, start_new_session=True, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _from_local() -> Infra:
    local_infra.ensure_packages()
    root = Path(tempfile.mkdtemp(prefix="nimbus-test-"))
    watchdog = start_watchdog(root)

    def close() -> None:
        try:
            local_infra.clean(root, graceful=False)  # thrown away: no need to be gentle
        finally:
            watchdog.kill()
            watchdog.wait()
            shutil.rmtree(root, ignore_errors=True)

    try:
        pg_port, amqp_port, dist_port, epmd_port = local_infra.free_ports(4)
        with ThreadPoolExecutor(2) as pool:  # RabbitMQ's ~6 s boot hides PostgreSQL's ~1 s
            pg = pool.submit(local_infra.start_postgres, root, pg_port, fast=True)
            amqp = pool.submit(local_infra.start_rabbitmq, root, amqp_port, dist_port, epmd_port)
            pg_url, amqp_url_ = pg.result(), amqp.result()
    except BaseException:
        close()
        raise
    return Infra("local", pg_url, amqp_url_, _CtlVhosts(root), close)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    """The session's PostgreSQL and RabbitMQ (see the module docstring for where from)."""
    started = time.monotonic()
    found = _from_env() or (_from_docker() if _docker_wanted() else _from_local())
    print(f"\n[infra] {found.kind} PostgreSQL + RabbitMQ ready in {time.monotonic() - started:.1f} s",
          file=sys.stderr)
    try:
        yield found
    finally:
        found.close()


@pytest.fixture(scope="session")
async def migrated_template(infra: Infra) -> AsyncIterator[str]:
    """Name of a database holding every migration, to clone per test.

    Connections to it are then refused, so that nothing holds it open and
    every `CREATE DATABASE ... TEMPLATE` succeeds at once.
    """
    from shared.db.migrate import apply_migrations

    # Outside servers may be shared by several runs: give this one its own name.
    name = TEMPLATE_DB if infra.kind != "env" else f"{TEMPLATE_DB}_{uuid.uuid4().hex[:8]}"
    await infra.drop_database(name)
    dsn = await infra.create_database(name)
    await apply_migrations(dsn)
    conn = await asyncpg.connect(infra.pg_admin_url)
    try:
        await conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
    finally:
        await conn.close()
    yield name
    if infra.kind == "env":
        await infra.drop_database(name)


@pytest.fixture
async def db_url(infra: Infra, migrated_template: str) -> AsyncIterator[str]:
    """URL of a fresh, fully migrated database of this test's own; dropped after."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = await infra.create_database(name, template=migrated_template)
    try:
        yield url
    finally:
        await infra.drop_database(name)


@pytest.fixture
async def amqp_url(infra: Infra) -> AsyncIterator[str]:
    """amqp URL of a fresh vhost of this test's own; deleted after."""
    url = await infra.new_vhost()
    try:
        yield url
    finally:
        await infra.drop_vhost(url)
