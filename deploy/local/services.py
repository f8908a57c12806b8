"""What `make up` runs: the Nimbus services, their commands, environment, ports and
health checks (`default_services()`), the one list the supervisor starts and the
compose and Kubernetes definitions are checked against. Standard library only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from deploy.local import infra

AZS = ("az1", "az2", "az3")


@dataclass(frozen=True)
class ServiceSpec:
    """One service process: how to run it and how to tell it is healthy."""

    name: str
    argv: Sequence[str]
    env_extra: Mapping[str, str] = field(default_factory=dict)
    health_url: str | None = None


@dataclass(frozen=True)
class ServicePorts:
    """The TCP ports the services listen on; the defaults are `make up`'s."""

    api: int = 8774
    identity: int = 5000
    scheduler_health: int = 8781
    network_health: int = 8782
    compute_health: Sequence[int] = (8783, 8784, 8785)
    volume_health: int = 8786
    console_proxy: int = 6080
    """The console proxy's port: its pages, websockets and `/healthz`."""
    image: int = 9292
    """The image endpoint (Glance v2 subset), served by the api process."""
    network: int = 9696
    """The network endpoint (Neutron v2.0 subset), served by the api process."""
    block_storage: int = 8776
    """The block-storage endpoint (Cinder v3 subset), served by the api process."""
    replica_health: Sequence[int] = tuple(range(8790, 8830))
    """Health ports of replicas, taken in order: each extra replica of a worker, and
    each api or console-proxy process when several share their ports."""

    @classmethod
    def free(cls, agents: int = len(AZS), replicas: int = 0) -> ServicePorts:
        """Ports free right now on 127.0.0.1 (for tests running beside `make up`);
        ``replicas`` health ports for replicas."""
        p = infra.free_ports(9 + agents + replicas)
        return cls(api=p[0], identity=p[1], scheduler_health=p[2], network_health=p[3],
                   console_proxy=p[4], volume_health=p[5], image=p[6], network=p[7],
                   block_storage=p[8], compute_health=tuple(p[9:9 + agents]),
                   replica_health=tuple(p[9 + agents:]))


REPLICATED = ("api", "scheduler", "network", "volume", "consoleproxy")
"""The services that may run as several processes (compute agents are one per host)."""


def api_workers(env: Mapping[str, str]) -> int:
    """How many API processes `make up` starts: `NIMBUS_API_WORKERS`, else one per core."""
    asked = env.get("NIMBUS_API_WORKERS", "").strip()
    return max(1, int(asked)) if asked else max(1, os.cpu_count() or 1)


def split_hosts(total: int, agents: int) -> list[int]:
    """How many hosts each of ``agents`` agent processes simulates for ``total`` hosts
    in all: as even as can be, the first ones taking one more (1000 over 3: 334, 333,
    333). ValueError when some agent would have none."""
    if total < agents:
        raise ValueError(f"{total} compute hosts cannot be spread over {agents} agents "
                         f"(one per zone): at least {agents}")
    return [total // agents + (i < total % agents) for i in range(agents)]


def compute_hosts_total(env: Mapping[str, str]) -> int | None:
    """The hosts `make up` simulates in all: `NIMBUS_COMPUTE_HOSTS_TOTAL`, else None
    (one host per agent)."""
    asked = env.get("NIMBUS_COMPUTE_HOSTS_TOTAL", "").strip()
    return int(asked) if asked else None


def default_services(env: Mapping[str, str] | None = None, *, ports: ServicePorts | None = None,
                     azs: Sequence[str] = AZS, host: str = "127.0.0.1",
                     python: str = sys.executable,
                     replicas: Mapping[str, int] | None = None,
                     compute_hosts: int | None = None) -> list[ServiceSpec]:
    """The Nimbus services: api, scheduler, network, volume, the console proxy and one
    compute agent per AZ.

    Args:
        env: the environment the stack will run with; only read for
            `NIMBUS_COMPUTE_HOST_PREFIX` (default `compute`), so that agent
            names (`<prefix>-<az>`) can differ between stacks sharing a broker.
        ports: listening ports; `ServicePorts()` (8774, 5000, 8781...) if None.
        azs: one compute agent per entry, named `<prefix>-<az>`.
        host: the address everything listens on and is reached at.
        python: the interpreter to run the services with.
        replicas: how many processes of each of `REPLICATED` (1 if not named).
            The first keeps the service's name, the others are `<name>-2`...;
            api and console-proxy processes share their ports (SO_REUSEPORT).
        compute_hosts: how many (fake) compute hosts in all, split over the
            agents (`split_hosts`), each agent simulating its share
            (`NIMBUS_COMPUTE_HOSTS`; hosts `<prefix>-<az>-0001`...); None: one
            host per agent, named `<prefix>-<az>`.
    """
    ports = ports or ServicePorts()
    if len(ports.compute_health) < len(azs):
        raise ValueError(f"{len(azs)} agents need as many compute_health ports")
    prefix = (env or {}).get("NIMBUS_COMPUTE_HOST_PREFIX", "compute")
    api_url, identity_url = f"http://{host}:{ports.api}", f"http://{host}:{ports.identity}"
    console_url = f"http://{host}:{ports.console_proxy}"
    specs = [
        ServiceSpec("api", [python, "-m", "services.api"], {
            "NIMBUS_API_HOST": host, "NIMBUS_API_PORT": str(ports.api),
            "NIMBUS_IDENTITY_HOST": host, "NIMBUS_IDENTITY_PORT": str(ports.identity),
            "NIMBUS_IDENTITY_PUBLIC_URL": identity_url,
            "NIMBUS_IDENTITY_COMPUTE_PUBLIC_URL": api_url,
            "NIMBUS_API_CONSOLE_PROXY_URL": console_url,
            "NIMBUS_API_IMAGE_PORT": str(ports.image),
            "NIMBUS_API_NETWORK_PORT": str(ports.network),
            "NIMBUS_API_BLOCK_STORAGE_PORT": str(ports.block_storage),
            "NIMBUS_IDENTITY_IMAGE_PUBLIC_URL": f"http://{host}:{ports.image}",
            "NIMBUS_IDENTITY_NETWORK_PUBLIC_URL": f"http://{host}:{ports.network}",
            "NIMBUS_IDENTITY_BLOCK_STORAGE_PUBLIC_URL": f"http://{host}:{ports.block_storage}",
        }, f"{api_url}/healthz"),
        _worker("scheduler", [python, "-m", "services.scheduler"], host, ports.scheduler_health),
        _worker("network", [python, "-m", "services.network"], host, ports.network_health),
        _worker("volume", [python, "-m", "services.volume"], host, ports.volume_health),
        ServiceSpec("consoleproxy", [python, "-m", "services.consoleproxy"], {
            "NIMBUS_CONSOLEPROXY_HOST": host, "NIMBUS_CONSOLEPROXY_PORT": str(ports.console_proxy),
            "NIMBUS_CONSOLEPROXY_PUBLIC_URL": console_url,
        }, f"{console_url}/healthz"),
    ]
    # Each agent's guests (libvirt driver) take VNC ports from a range of its own.
    vnc_base = int((env or {}).get("NIMBUS_LIBVIRT_VNC_PORT_BASE", "15900"))
    shares = split_hosts(compute_hosts, len(azs)) if compute_hosts is not None else None
    for i, (az, port) in enumerate(zip(azs, ports.compute_health)):
        name = f"{prefix}-{az}"
        vnc_min = vnc_base + 100 * i
        many = {"NIMBUS_COMPUTE_HOSTS": str(shares[i])} if shares is not None else {}
        specs.append(_worker(name, [python, "-m", "services.compute_agent"], host, port,
                             NIMBUS_COMPUTE_HOST=name, NIMBUS_COMPUTE_AZ=az,
                             NIMBUS_LIBVIRT_VNC_PORT_MIN=str(vnc_min),
                             NIMBUS_LIBVIRT_VNC_PORT_MAX=str(vnc_min + 99), **many))
    return _replicate(specs, replicas or {}, ports.replica_health, host)


def _replicate(specs: list[ServiceSpec], replicas: Mapping[str, int], health_ports: Sequence[int],
               host: str) -> list[ServiceSpec]:
    """Each spec as many times as `replicas` says, each copy with a health port of its own.

    Workers' extra copies differ only in name and `NIMBUS_HEALTH_PORT`. The api and
    the console proxy serve their health on the port they share, where any of the
    copies may answer, so when there are several each gets a port of its own."""
    unknown = set(replicas) - set(REPLICATED)
    if unknown:
        raise ValueError(f"only {', '.join(REPLICATED)} have replicas, not {', '.join(unknown)}")
    free = iter(health_ports)
    out = []
    for spec in specs:
        count = replicas.get(spec.name, 1)
        shared_port = spec.name in ("api", "consoleproxy")
        for i in range(1, count + 1):
            if i == 1 and (count == 1 or not shared_port):
                out.append(spec)
                continue
            try:
                port = next(free)
            except StopIteration:
                raise ValueError("not enough replica_health ports for the replicas") from None
            name = spec.name if i == 1 else f"{spec.name}-{i}"
            env = {**spec.env_extra, "NIMBUS_HEALTH_HOST": host, "NIMBUS_HEALTH_PORT": str(port)}
            out.append(ServiceSpec(name, spec.argv, env, f"http://{host}:{port}/healthz"))
    return out


def _worker(name: str, argv: list[str], host: str, port: int, **extra: str) -> ServiceSpec:
    env = {"NIMBUS_HEALTH_HOST": host, "NIMBUS_HEALTH_PORT": str(port), **extra}
    return ServiceSpec(name, argv, env, f"http://{host}:{port}/healthz")
