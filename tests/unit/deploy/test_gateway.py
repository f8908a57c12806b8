"""deploy/compose/gateway.py: the compose cluster's balancer hands each connection to
the next replica that accepts one, and its /healthz says whether every route has one.

Real sockets: two backends on one port of two loopback addresses (as the api
replicas are two hosts on one port in the compose network), the gateway on a third.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[3] / "deploy" / "compose" / "gateway.py"
_spec = importlib.util.spec_from_file_location("compose_gateway", _PATH)
gateway = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gateway)

A, B, FRONT = "127.0.0.1", "127.0.0.2", "127.0.0.3"


def test_parse_routes_reads_ports_and_hosts():
    assert gateway.parse_routes("5000,8774=api,api-2; 6080=consoleproxy,consoleproxy-2") == {
        5000: ["api", "api-2"], 8774: ["api", "api-2"], 6080: ["consoleproxy", "consoleproxy-2"]}


@pytest.mark.parametrize("text", ["", "5000=", "x=api"])
def test_parse_routes_refuses_routes_without_hosts_or_ports(text):
    with pytest.raises(ValueError):
        gateway.parse_routes(text)


def _free_port() -> int:
    """A port free on each of the three addresses."""
    while True:
        with socket.socket() as s:
            s.bind((A, 0))
            port = s.getsockname()[1]
            try:
                for addr in (B, FRONT):
                    with socket.socket() as t:
                        t.bind((addr, port))
                return port
            except OSError:
                continue


async def _backend(name: str, host: str, port: int) -> asyncio.Server:
    async def answer(reader, writer):
        writer.write(name.encode() + b":" + await reader.readline())
        await writer.drain()
        writer.close()
    return await asyncio.start_server(answer, host, port)


async def _ask(port: int) -> bytes:
    reader, writer = await asyncio.open_connection(FRONT, port)
    writer.write(b"ping\n")
    await writer.drain()
    reply = await reader.read()
    writer.close()
    return reply


async def _health(port: int) -> tuple[int, dict]:
    reader, writer = await asyncio.open_connection(FRONT, port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = (await reader.read()).partition(b"\r\n\r\n")
    writer.close()
    return int(head.split()[1]), json.loads(body)


async def test_connections_go_to_the_replicas_in_turn_skipping_a_stopped_one():
    port, health_port = _free_port(), _free_port()
    a, b = await _backend("a", A, port), await _backend("b", B, port)
    servers = await gateway.start({port: [A, B]}, health_port, host=FRONT)
    try:
        assert [await _ask(port) for _ in range(4)] == [b"a:ping\n", b"b:ping\n"] * 2
        assert await _health(health_port) == (200, {"routes": {str(port): {A: True, B: True}}})

        b.close()
        await b.wait_closed()
        assert [await _ask(port) for _ in range(3)] == [b"a:ping\n"] * 3
        assert await _health(health_port) == (200, {"routes": {str(port): {A: True, B: False}}})

        a.close()
        await a.wait_closed()
        assert await _ask(port) == b""  # closed: no replica to hand it to
        assert (await _health(health_port))[0] == 503
    finally:
        for s in servers:
            s.close()
        a.close()
        b.close()
