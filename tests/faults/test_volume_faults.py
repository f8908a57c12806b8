"""Volumes under faults, done for real: nothing accepted is lost, nothing stays
creating, attaching, detaching or deleting.

* the volume service killed -9 in the middle of a burst of creates, snapshots and
  deletes, then started again: every 202 ends where it should (messages left
  unacked come again; every handler takes a repeat);
* PostgreSQL stopped during creates and attaches: the API answers 202 or 503,
  and every 202 ends available (in-use for the attaches);
* a compute agent killed -9 for good with an attach on its queue: the volume
  service's sweep releases the volume (available again) once the host counts as
  down, and deleting the server then leaves its other volume available.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.e2e.acting import active_server, host_of
from tests.e2e.client import Api, Cloud, eventually
from tests.e2e.volumes import attach, available_volume, wait_volume, wait_volume_gone
from tests.faults.conftest import FaultInfra, _tenant

TRANSIENT = ("creating", "attaching", "detaching", "deleting")


@pytest.fixture
async def tenants(fault_cloud: Cloud, request: pytest.FixtureRequest) -> list[Api]:
    """Two projects of the test's own, with no quota or rate limit in the way."""
    return [await _tenant(fault_cloud, f"v-{request.node.name[5:30]}-{i}") for i in range(2)]


async def _statuses(cloud: Cloud, project_id: str) -> dict[str, str]:
    conn = await cloud.db()
    try:
        rows = await conn.fetch("SELECT id, status FROM volumes WHERE project_id = $1 "
                                "AND deleted_at IS NULL", project_id)
    finally:
        await conn.close()
    return {str(r["id"]): r["status"] for r in rows}


async def _settled(cloud: Cloud, project_id: str, timeout: float = 90.0) -> dict[str, str]:
    async def check() -> dict[str, str] | None:
        now = await _statuses(cloud, project_id)
        return None if any(s in TRANSIENT for s in now.values()) else (now or {"-": "none"})
    return await eventually(check, timeout=timeout, interval=0.2)


def _files(cloud: Cloud) -> set[str]:
    store = Path(cloud.stack.env["NIMBUS_VOLUMES_DIR"])
    return {p.name for p in store.iterdir() if not p.name.endswith(".part")} \
        if store.exists() else set()


async def test_volume_service_killed_mid_burst(fault_cloud: Cloud, tenants: list[Api]) -> None:
    api = tenants[0]
    keep = [await available_volume(api, 1) for _ in range(3)]
    answers = await asyncio.gather(*(
        api.post("/os-volumes", json={"volume": {"size": 1, "display_name": f"burst-{i}"}})
        for i in range(15)))
    snaps = await asyncio.gather(*(
        api.post("/os-snapshots", json={"snapshot": {"volume_id": v["id"]}}) for v in keep[:2]))
    deleted = await api.delete(f"/os-volumes/{keep[2]['id']}")
    await asyncio.to_thread(fault_cloud.stack.kill, "volume", signal.SIGKILL)
    assert [r.status for r in answers] == [202] * 15
    assert [r.status for r in snaps] == [202, 202] and deleted.status == 202
    await asyncio.to_thread(fault_cloud.stack.restart, "volume")

    made = [r.json["volume"]["id"] for r in answers]
    for vid in made:
        await wait_volume(api, vid, "available", timeout=90)
    for r in snaps:
        sid = r.json["snapshot"]["id"]
        assert await eventually(lambda sid=sid: _snapshot_status(fault_cloud, sid),
                                timeout=90) == "available"
    await wait_volume_gone(api, keep[2]["id"], timeout=90)
    statuses = await _settled(fault_cloud, api.project_id)
    assert set(statuses.values()) == {"available"}, statuses
    # One file per live volume and snapshot of the store: none lost, none left behind.
    live = await fault_cloud.fetchval(
        "SELECT (SELECT count(*) FROM volumes WHERE deleted_at IS NULL AND connection IS NOT NULL)"
        " + (SELECT count(*) FROM volume_snapshots WHERE deleted_at IS NULL"
        "    AND location IS NOT NULL)")
    assert len(_files(fault_cloud)) == live
    assert not any(keep[2]["id"] in name for name in _files(fault_cloud))


async def _snapshot_status(cloud: Cloud, sid: str) -> str | None:
    status = await cloud.fetchval("SELECT status FROM volume_snapshots WHERE id = $1::uuid", sid)
    return status if status not in ("creating",) else None


async def test_postgres_stopped_during_creates_and_attaches(
        fault_cloud: Cloud, fault_infra: FaultInfra, tenants: list[Api]) -> None:
    api = tenants[1]
    sid = await active_server(api, "vol-pg")
    free = [await available_volume(api, 1) for _ in range(2)]
    accepted: list[str] = []
    attached: list[str] = []
    others: list[int] = []

    async def load() -> None:
        for i in range(30):
            r = await api.post("/os-volumes", json={"volume": {"size": 1}})
            (accepted.append(r.json["volume"]["id"]) if r.status == 202
             else others.append(r.status))
            if i in (5, 15) and free:
                v = free.pop()
                a = await api.post(f"/servers/{sid}/os-volume_attachments",
                                   json={"volumeAttachment": {"volumeId": v["id"]}})
                attached.append(v["id"]) if a.status == 202 else others.append(a.status)
                if a.status != 202:
                    free.append(v)
            await asyncio.sleep(0.1)  # a steady load, not a synchronisation

    task = asyncio.create_task(load())
    await asyncio.sleep(0.5)
    await asyncio.to_thread(fault_infra.stop_postgres)
    await asyncio.sleep(3)  # the outage itself
    await asyncio.to_thread(fault_infra.start_postgres)
    await task
    assert set(others) <= {503}, others
    for vid in accepted:
        await wait_volume(api, vid, "available", timeout=120)
    for vid in attached:
        await wait_volume(api, vid, "in-use", timeout=120)
    statuses = await _settled(fault_cloud, api.project_id)
    assert not any(s in TRANSIENT or s.startswith("error") for s in statuses.values()), statuses


async def test_attach_on_a_host_that_died_is_released(fault_cloud: Cloud,
                                                      tenants: list[Api]) -> None:
    api = tenants[0]
    sid = await active_server(api, "vol-dead-host")
    host = await host_of(fault_cloud, sid)
    keep = await available_volume(api, 1)
    await attach(api, sid, keep["id"])
    await wait_volume(api, keep["id"], "in-use")
    doomed = await available_volume(api, 1)
    agent = host  # the supervisor names each agent after its host
    assert agent in fault_cloud.stack.services
    await asyncio.to_thread(fault_cloud.stack.kill, agent, signal.SIGKILL)
    try:
        # Accepted: the host has not been silent long enough to count as down yet.
        await attach(api, sid, doomed["id"])
        assert (await _statuses(fault_cloud, api.project_id))[doomed["id"]] == "attaching"
        # Nobody will ever plug it in: the sweep gives it back once the host is down.
        released = await wait_volume(api, doomed["id"], "available", timeout=90)
        assert released["attachments"] == [{}]
        reason = await fault_cloud.fetchval(
            "SELECT error_reason FROM volumes WHERE id = $1::uuid", doomed["id"])
        assert reason and "attach" in reason
        # Deleting the server on its dead host frees what it held.
        assert (await api.delete(f"/servers/{sid}")).status == 204
        await api.wait_status(sid, lambda s: s is None, timeout=60)
        back = await wait_volume(api, keep["id"], "available", timeout=60)
        assert back["attachments"] == [{}]
    finally:
        await asyncio.to_thread(fault_cloud.stack.restart, agent)
