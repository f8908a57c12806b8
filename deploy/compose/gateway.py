"""The compose cluster's front door: a TCP balancer over the api and console-proxy replicas.

Two API containers cannot both publish 8774 on the host, and podman-compose 1.0.3
cannot put two containers in one network namespace (where the replicas would
share their ports with SO_REUSEPORT, as under `make up`), so this process
publishes the contract's ports and hands each connection to the next replica in
turn, skipping one that refuses (stopped, restarting). It works on bytes, so
HTTP keep-alive, XML, websockets (the console proxy's) all pass through as they
are; a kept-alive connection stays with the replica it was given.

Standard library only: compose.yaml mounts this file into the services' image
and runs it as ``python -m gateway``, so that the image's health check
(deploy/images/healthcheck.py) asks ``NIMBUS_HEALTH_PORT``, where ``/healthz``
answers 200 while every route has a replica that accepts connections.

Configuration, the environment only:
    NIMBUS_GATEWAY_ROUTES  ``PORTS=HOSTS;...``, e.g.
                           ``5000,8774=api,api-2;6080=consoleproxy,consoleproxy-2``:
                           each port is listened on and forwarded to the same
                           port of each host.
    NIMBUS_HEALTH_PORT     the health port (default 8790).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys

CONNECT_TIMEOUT_S = 2.0
CHUNK = 65536


def parse_routes(text: str) -> dict[int, list[str]]:
    """``{port: [host, ...]}`` from ``NIMBUS_GATEWAY_ROUTES``."""
    routes: dict[int, list[str]] = {}
    for entry in filter(None, (e.strip() for e in text.split(";"))):
        ports, _, hosts = entry.partition("=")
        backends = [h.strip() for h in hosts.split(",") if h.strip()]
        if not backends:
            raise ValueError(f"route {entry!r} names no hosts")
        for port in ports.split(","):
            routes[int(port)] = backends
    if not routes:
        raise ValueError("NIMBUS_GATEWAY_ROUTES names no routes")
    return routes


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def _connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)


class Route:
    """One listening port and the replicas behind it, taken in turn."""

    def __init__(self, port: int, hosts: list[str]) -> None:
        self.port, self.hosts = port, hosts
        self._turn = itertools.cycle(range(len(hosts)))

    async def upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to the next replica that accepts one; None if none does."""
        start = next(self._turn)
        for i in range(len(self.hosts)):
            host = self.hosts[(start + i) % len(self.hosts)]
            try:
                return await _connect(host, self.port)
            except (OSError, asyncio.TimeoutError):
                continue
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up = await self.upstream()
        if up is None:
            writer.close()
            return
        up_reader, up_writer = up
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (up_writer, writer):
                w.close()

    async def reachable(self) -> dict[str, bool]:
        """Which replicas accept a connection now."""
        async def probe(host: str) -> bool:
            try:
                _, w = await _connect(host, self.port)
            except (OSError, asyncio.TimeoutError):
                return False
            w.close()
            return True
        return dict(zip(self.hosts, await asyncio.gather(*map(probe, self.hosts))))


async def _health(routes: list[Route], reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> None:
    """A minimal ``GET /healthz``: 200 while every route has a replica, else 503."""
    try:
        request = await reader.readline()
        while (await reader.readline()).strip():
            pass
        if request.split()[1:2] != [b"/healthz"]:
            status, body = "404 Not Found", {"error": "not found"}
        else:
            seen = {str(r.port): await r.reachable() for r in routes}
            ok = all(any(hosts.values()) for hosts in seen.values())
            status, body = ("200 OK" if ok else "503 Service Unavailable"), {"routes": seen}
        payload = json.dumps(body).encode()
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                     + payload)
        await writer.drain()
    except (ConnectionError, OSError, IndexError):
        pass
    finally:
        writer.close()


async def start(routes: dict[int, list[str]], health_port: int,
                host: str = "0.0.0.0") -> list[asyncio.Server]:
    """Listening on every route's port and on the health port."""
    table = [Route(port, hosts) for port, hosts in routes.items()]
    servers = [await asyncio.start_server(r.handle, host, r.port) for r in table]
    servers.append(await asyncio.start_server(
        lambda rd, wr: _health(table, rd, wr), host, health_port))
    for r in table:
        print(f"gateway: {host}:{r.port} -> {', '.join(r.hosts)}", flush=True)
    return servers


async def serve(routes: dict[int, list[str]], health_port: int) -> None:
    servers = await start(routes, health_port)
    # As PID 1 of its container, SIGTERM does nothing unless handled.
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


def main() -> int:
    try:
        routes = parse_routes(os.environ.get("NIMBUS_GATEWAY_ROUTES", ""))
    except ValueError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(routes, int(os.environ.get("NIMBUS_HEALTH_PORT", "8790"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
