"""Helpers for the server action tests: post an action in JSON or XML, watch a
server's three state axes move, read its console, clean up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from lxml import etree

from tests.e2e.client import NS, Api, Response

XML_BODY = {"Content-Type": "application/xml"}

CORE_KEYS = frozenset({"id", "name", "status", "updated", "hostId", "addresses", "links", "image",
                       "flavor", "metadata", "tenant_id", "user_id", "created", "accessIPv4",
                       "accessIPv6", "progress"})
"""What update (4.4.1.9) and rebuild (4.4.1.18, with adminPass) answer, as their
examples show: the server without the attributes of extensions (key_name,
OS-EXT-STS:*, security_groups, ...)."""

State = tuple[str, str | None, int]
"""(status, OS-EXT-STS:task_state, OS-EXT-STS:power_state)"""


async def act(api: Api, sid: str, body: dict[str, Any] | bytes, *, xml: bool = False) -> Response:
    """POST ``body`` to the server's action URL: a dict as JSON, bytes as XML."""
    if isinstance(body, bytes):
        return await api.post(f"/servers/{sid}/action", data=body, headers=XML_BODY, xml=xml)
    return await api.post(f"/servers/{sid}/action", json=body, xml=xml)


async def active_server(api: Api, name: str = "acting", **extra: Any) -> str:
    r = await api.boot(name=name, **extra)
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    await api.wait_status(sid, lambda s: s is not None and s["status"] == "ACTIVE")
    return sid


def state(server: dict[str, Any]) -> State:
    return (server["status"], server["OS-EXT-STS:task_state"], server["OS-EXT-STS:power_state"])


async def watch(api: Api, sid: str, done: Callable[[dict[str, Any]], bool],
                timeout: float = 30.0) -> tuple[dict[str, Any], list[State]]:
    """Poll the server until ``done(server)``; return it and every state seen, in order."""
    seen: list[State] = []
    deadline = time.monotonic() + timeout
    while True:
        server = await api.server(sid)
        assert server is not None, f"server {sid} is gone; saw {seen}"
        now = state(server)
        if not seen or seen[-1] != now:
            seen.append(now)
        if done(server):
            return server, seen
        if time.monotonic() > deadline:
            raise AssertionError(f"server {sid} still {now} after {timeout} s; saw {seen}")
        await asyncio.sleep(0.03)


def settled(status: str) -> Callable[[dict[str, Any]], bool]:
    """The server shows ``status`` with no task in flight."""
    return lambda s: s["status"] == status and s["OS-EXT-STS:task_state"] is None


async def console(api: Api, sid: str, length: int | None = None) -> str:
    body: dict[str, Any] = {} if length is None else {"length": length}
    r = await act(api, sid, {"os-getConsoleOutput": body})
    assert r.status == 200, r.raw
    return r.json["output"]


def boots(text: str) -> int:
    return text.count("Booting the kernel.")


def fault(r: Response, name: str, code: int) -> str:
    """The message of the fault body ``name`` (JSON or XML); checks the status too."""
    assert r.status == code, (r.status, r.raw)
    if r.xml is not None:
        assert etree.QName(r.xml) == etree.QName(NS, name), r.raw
        assert r.xml.get("code") == str(code)
        return r.xml.findtext(f"{{{NS}}}message")
    assert set(r.json) == {name}, r.json
    assert r.json[name]["code"] == code
    return r.json[name]["message"]


async def delete_and_wait(api: Api, *sids: str) -> None:
    async def one(sid: str) -> None:
        r = await api.delete(f"/servers/{sid}")
        assert r.status in (204, 404), r.raw
        await api.wait_status(sid, lambda s: s is None)
    await asyncio.gather(*(one(sid) for sid in sids))


async def host_of(cloud: Any, sid: str) -> str:
    conn = await cloud.db()
    try:
        return await conn.fetchval("SELECT host FROM servers WHERE id = $1::uuid", sid)
    finally:
        await conn.close()
