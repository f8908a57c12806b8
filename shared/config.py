"""Settings: frozen msgspec Structs filled from a TOML file and the environment.

A service builds its ``Settings`` once in ``__main__`` with :func:`load` and passes
it down; nothing reads the environment later. For a section called ``database``
with a field ``url`` the sources are, later winning:

1. the field's default,
2. ``[database] url = ...`` in the TOML file named by ``NIMBUS_CONFIG``,
3. the environment variable ``NIMBUS_DATABASE_URL``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Mapping, TypeVar

import msgspec

from shared.retry import RetryPolicy

T = TypeVar("T", bound=msgspec.Struct)

ENV_PREFIX = "NIMBUS_"


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str = "postgresql://nimbus:nimbus@127.0.0.1:15433/nimbus"
    """asyncpg DSN of the Nimbus database."""
    pool_min: Annotated[int, msgspec.Meta(ge=0)] = 1
    """Connections opened at start; more saves latency on the first requests."""
    pool_max: Annotated[int, msgspec.Meta(ge=1)] = 10
    """Upper bound of the pool; each connection costs a PostgreSQL backend."""
    connect_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    """Seconds to open one connection. An unreachable database fails this fast
    instead of hanging the request that needed it."""
    acquire_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    """Seconds to wait for a free pooled connection (connecting included). Lower
    answers 503 sooner when the pool is exhausted or the database is down; too low
    turns a short burst of load into errors."""
    command_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 15.0
    """Seconds one statement may take before it is cancelled (a hung database,
    a lock held by a stuck transaction). Every statement here is a short OLTP
    query; keep it well above the slowest (a migration runs without it)."""


class AmqpSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str = "amqp://guest:guest@127.0.0.1:15673/"
    """RabbitMQ URL, vhost included."""
    rpc_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    """Seconds an RPC call waits for its reply before raising RpcTimeout."""
    publish_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    """Seconds one publish may wait for the broker's confirm. A broker under a
    memory or disk alarm blocks publishers: this turns that into an error the
    caller can retry (or answer 503 for) instead of a hang."""
    retry_first_delay_s: Annotated[float, msgspec.Meta(gt=0)] = 0.5
    """First wait before a message whose handler failed on a transient error
    (database or broker unreachable) is handled again; it doubles each time."""
    retry_max_delay_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    """Longest wait between two tries of such a message."""
    retry_deadline_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    """How long after its first transient failure a message is still retried.
    Then its work ends in ERROR with a fault saying why (where the database
    lets that be written) and the message goes to the queue's dead-letter
    queue (``<queue>.dead-letter``). Longer rides out longer outages; shorter
    tells users sooner."""

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(first_delay_s=self.retry_first_delay_s,
                           max_delay_s=self.retry_max_delay_s,
                           deadline_s=self.retry_deadline_s)


class LogSettings(msgspec.Struct, frozen=True, kw_only=True):
    level: str = "info"
    """Lowest level written: debug, info, warning, error."""


class HealthSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    """Port of a worker's ``GET /healthz``; 0 turns the endpoint off."""


class ShutdownSettings(msgspec.Struct, frozen=True, kw_only=True):
    grace_s: Annotated[float, msgspec.Meta(ge=0)] = 25.0
    """Seconds a service stopping on SIGTERM gives what is in flight (an API
    request, a handler of a message) to finish, once it takes no new ones; what
    is still running then is cut off, and its message handed back to the broker
    for another consumer. Keep it below Kubernetes' ``terminationGracePeriodSeconds``
    (30 s by default), which kills the process when it runs out."""


def _file_data() -> dict[str, Any]:
    path = os.environ.get(ENV_PREFIX + "CONFIG")
    if not path:
        return {}
    with Path(path).open("rb") as fh:
        return tomllib.load(fh)


def load_section(cls: type[T], section: str, *, file_data: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None) -> T:
    """Build one settings section from the file's table and ``NIMBUS_<SECTION>_<FIELD>``."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = dict((file_data or {}).get(section, {}))
    for field in msgspec.structs.fields(cls):
        key = f"{ENV_PREFIX}{section}_{field.name}".upper()
        if key in environ:
            data[field.name] = environ[key]
    try:
        return msgspec.convert(data, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise SystemExit(f"bad configuration in section [{section}]: {exc}") from exc


def load(cls: type[T], *, environ: Mapping[str, str] | None = None) -> T:
    """Build a service's Settings whose fields are each one section struct."""
    file_data = _file_data()
    sections = {
        f.name: load_section(f.type, f.name, file_data=file_data, environ=environ)
        for f in msgspec.structs.fields(cls)
    }
    return cls(**sections)
