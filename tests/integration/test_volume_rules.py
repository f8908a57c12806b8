"""The volume API's status rules, over HTTP to the compute app in-process on a real
PostgreSQL and RabbitMQ, with volumes put in each status by the guarded updates
the volume service and the compute agents use (``shared.db.volumes``), so that
statuses the e2e tests only pass through (creating, attaching, in-use, error)
are held still here.

The app's outbox relay is not started: every message a request wrote stays in
the ``outbox`` table, where each test reads exactly what was asked of the
volume service (and that a refusal asked nothing).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.app import create_compute_app
from services.api.catalog import bootstrap_catalog
from services.api.identity import IdentitySettings, bootstrap_identity, create_identity_app
from services.api.settings import ApiSettings, Settings
from shared.config import AmqpSettings, DatabaseSettings, LogSettings
from shared.contracts.volume import (
    CreateSnapshot,
    CreateVolume,
    DeleteSnapshot,
    DeleteVolume,
    VolumeConnection,
    VolumeMessage,
)
from shared.db import hosts
from shared.db import volumes as volume_db
from shared.db.pool import create_pool
from shared.image_store import ImageStore
from shared.outbox import Relay
from shared.rpc import RpcClient
from shared.volume_states import ATTACH, CREATE, SNAPSHOT_CREATE


class Api:
    def __init__(self, client: TestClient, token: str, project: str, pool: asyncpg.Pool) -> None:
        self.client, self.project, self.pool = client, project, pool
        self.headers = {"X-Auth-Token": token}

    async def call(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        resp = await self.client.request(method, f"/v2/{self.project}{path}",
                                         headers=self.headers, json=json)
        text = await resp.text()
        return resp.status, (msgspec.json.decode(text) if text else None)

    async def volume(self, size: int = 1, **fields: Any) -> str:
        status, body = await self.call("POST", "/os-volumes",
                                       {"volume": {"size": size, **fields}})
        assert status == 202, body
        return body["volume"]["id"]

    async def outbox(self) -> list[VolumeMessage]:
        """Every message the API wrote, oldest first (the relay never runs)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT body FROM outbox WHERE queue = 'volume' ORDER BY id")
        return [msgspec.json.decode(r["body"], type=VolumeMessage) for r in rows]

    async def made(self, volume_id: str) -> None:
        """What the volume service does once the volume's bits exist."""
        async with self.pool.acquire() as conn:
            assert await volume_db.set_created(conn, uuid.UUID(volume_id),
                                               VolumeConnection(name=f"volume-{volume_id}"),
                                               bootable=False)

    async def attached(self, volume_id: str) -> None:
        """What the attach does: available -> attaching (API) -> in-use (agent)."""
        async with self.pool.acquire() as conn:
            vid, sid = uuid.UUID(volume_id), uuid.uuid4()
            assert await volume_db.begin_attach(conn, vid, self.project, sid, "/dev/vdb",
                                                request_id="req-attach")
            assert await volume_db.end_attach(conn, vid, sid)

    async def snapshot_made(self, snapshot_id: str) -> None:
        async with self.pool.acquire() as conn:
            assert await volume_db.end_snapshot(conn, uuid.UUID(snapshot_id), SNAPSHOT_CREATE,
                                                location=f"snapshot-{snapshot_id}")


@pytest.fixture
async def api(db_url: str, amqp_url: str, rpc: RpcClient, tmp_path) -> AsyncIterator[Api]:
    pool = await create_pool(DatabaseSettings(url=db_url, pool_min=1, pool_max=8))
    async with pool.acquire() as conn:
        await bootstrap_identity(conn, IdentitySettings())
        await bootstrap_catalog(conn, ImageStore(str(tmp_path)))
        for az in ("az1", "az2"):
            await hosts.report(conn, hosts.HostCapacity(
                host=f"h-{az}", availability_zone=az, total_ram_mb=1024, total_disk_gb=10,
                total_vcpus=2))
    identity = TestClient(TestServer(create_identity_app(pool, IdentitySettings(
        token_purge_interval_s=0))))
    await identity.start_server()
    resp = await identity.post("/v2.0/tokens", json={"auth": {"passwordCredentials": {
        "username": "demo", "password": "demo"}, "tenantName": "demo"}})
    access = (await resp.json())["access"]
    settings = Settings(database=DatabaseSettings(url=db_url), amqp=AmqpSettings(url=amqp_url),
                        log=LogSettings(), api=ApiSettings(), identity=IdentitySettings())
    client = TestClient(TestServer(create_compute_app(settings, pool, rpc, Relay(pool, rpc))))
    await client.start_server()
    yield Api(client, access["token"]["id"], access["token"]["tenant"]["id"], pool)
    await client.close()
    await identity.close()
    await pool.close()


async def test_create_writes_the_row_and_its_message_together(api: Api) -> None:
    vid = await api.volume(2, display_name="v")
    assert await api.outbox() == [CreateVolume(volume_id=uuid.UUID(vid))]
    status, body = await api.call("GET", f"/os-volumes/{vid}")
    assert (status, body["volume"]["status"]) == (200, "creating")
    # Without a zone: the configured default (az1, NIMBUS_API_VOLUME_DEFAULT_ZONE).
    assert body["volume"]["availabilityZone"] == "az1"
    async with api.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM volumes WHERE id = $1", uuid.UUID(vid))
    assert row["status_request_id"] is not None and row["size_gb"] == 2


async def test_delete_only_from_available_or_error(api: Api) -> None:
    vid = await api.volume()
    status, body = await api.call("DELETE", f"/os-volumes/{vid}")
    assert status == 400
    assert body["badRequest"]["message"] == ("Invalid volume: Volume status must be available "
                                             "or error, but current status is: creating")
    await api.made(vid)
    await api.attached(vid)
    status, body = await api.call("DELETE", f"/os-volumes/{vid}")
    assert status == 400 and body["badRequest"]["message"].endswith("current status is: in-use")
    assert await api.outbox() == [CreateVolume(volume_id=uuid.UUID(vid))]

    failed = await api.volume()
    async with api.pool.acquire() as conn:
        assert await volume_db.end(conn, uuid.UUID(failed), CREATE, failed="backend broke")
    assert (await api.call("DELETE", f"/os-volumes/{failed}"))[0] == 202
    assert (await api.outbox())[-1] == DeleteVolume(volume_id=uuid.UUID(failed))
    # deleting: a second delete is refused (and writes nothing).
    status, body = await api.call("DELETE", f"/os-volumes/{failed}")
    assert status == 400 and body["badRequest"]["message"].endswith("status is: deleting")
    assert len(await api.outbox()) == 3


async def test_snapshots_need_an_available_volume_or_force_on_in_use(api: Api) -> None:
    vid = await api.volume(3)
    snap = {"snapshot": {"volume_id": vid}}
    status, body = await api.call("POST", "/os-snapshots", snap)
    assert status == 400
    assert body["badRequest"]["message"] == (f"Invalid volume: Volume {vid} must be available "
                                             "to snapshot it, but its status is creating.")
    await api.made(vid)
    await api.attached(vid)
    status, body = await api.call("POST", "/os-snapshots", snap)
    assert status == 400 and "is in-use: use force" in body["badRequest"]["message"]
    assert (await api.call("POST", "/os-snapshots",
                           {"snapshot": {"volume_id": vid, "force": "false"}}))[0] == 400
    assert await api.outbox() == [CreateVolume(volume_id=uuid.UUID(vid))]
    status, body = await api.call("POST", "/os-snapshots",
                                  {"snapshot": {"volume_id": vid, "force": True}})
    assert status == 202 and body["snapshot"]["size"] == 3
    assert body["snapshot"]["status"] == "creating"
    assert (await api.outbox())[-1] == CreateSnapshot(snapshot_id=uuid.UUID(body["snapshot"]["id"]))


async def test_snapshot_delete_rules(api: Api) -> None:
    vid = await api.volume(2)
    await api.made(vid)
    status, body = await api.call("POST", "/os-snapshots", {"snapshot": {"volume_id": vid}})
    sid = body["snapshot"]["id"]
    # creating: neither deleted nor a source yet.
    status, body = await api.call("DELETE", f"/os-snapshots/{sid}")
    assert status == 400 and body["badRequest"]["message"].endswith("current status is: creating")
    status, body = await api.call("POST", "/os-volumes", {"volume": {"snapshot_id": sid}})
    assert status == 400 and "must be available to make a volume" in body["badRequest"]["message"]
    await api.snapshot_made(sid)
    # The volume is the snapshot's source: it cannot go while the snapshot lives.
    status, body = await api.call("DELETE", f"/os-volumes/{vid}")
    assert status == 400
    assert body["badRequest"]["message"] == "Invalid volume: Volume still has 1 dependent snapshots"
    made = await api.volume(size=None, snapshot_id=sid)          # size: the snapshot's
    status, body = await api.call("GET", f"/os-volumes/{made}")
    assert (body["volume"]["size"], body["volume"]["snapshotId"]) == (2, sid)
    # A volume is being made from it: refused until that one is made.
    before = await api.outbox()
    status, body = await api.call("DELETE", f"/os-snapshots/{sid}")
    assert status == 400 and "a volume is being made from snapshot" in body["badRequest"]["message"]
    assert await api.outbox() == before
    await api.made(made)
    assert (await api.call("DELETE", f"/os-snapshots/{sid}"))[0] == 202
    assert (await api.outbox())[-1] == DeleteSnapshot(snapshot_id=uuid.UUID(sid))
    status, body = await api.call("GET", f"/os-snapshots/{sid}")
    assert (status, body["snapshot"]["status"]) == (200, "deleting")


async def test_images_must_be_active_and_have_a_file(api: Api) -> None:
    async with api.pool.acquire() as conn:
        saving, empty = uuid.uuid4(), uuid.uuid4()
        for image_id, status, location in ((saving, "SAVING", None), (empty, "ACTIVE", None)):
            await conn.execute(
                "INSERT INTO images (id, name, status, visibility, owner_project_id, min_disk_gb,"
                " min_ram_mb, size_bytes, location) VALUES ($1, 'i', $2, 'private', $3, 0, 0,"
                " 1024, $4)", image_id, status, api.project, location)
    for image_id, message in ((saving, f"Image {saving} is not active."),
                              (empty, f"Image {empty} has no data to copy into a volume.")):
        status, body = await api.call("POST", "/os-volumes",
                                      {"volume": {"size": 1, "imageRef": str(image_id)}})
        assert (status, body["badRequest"]["message"]) == (400, message)
    assert await api.outbox() == []


async def test_zones_follow_the_snapshot(api: Api) -> None:
    vid = await api.volume(1, availability_zone="az2")
    await api.made(vid)
    status, body = await api.call("POST", "/os-snapshots", {"snapshot": {"volume_id": vid}})
    sid = body["snapshot"]["id"]
    await api.snapshot_made(sid)
    made = await api.volume(size=1, snapshot_id=sid)
    assert (await api.call("GET", f"/os-volumes/{made}"))[1]["volume"]["availabilityZone"] == "az2"
    status, body = await api.call("POST", "/os-volumes", {"volume": {
        "snapshot_id": sid, "availability_zone": "az1"}})
    assert status == 400
    assert body["badRequest"]["message"] == ("Volume must be in the same availability zone as "
                                             "the snapshot (az2).")
    status, body = await api.call("POST", "/os-volumes", {"volume": {
        "size": 1, "availability_zone": "az9"}})
    assert (status, body["badRequest"]["message"]) == (400, "Availability zone 'az9' is invalid.")


async def test_snapshot_and_delete_racing_never_leave_an_orphan(api: Api) -> None:
    """A snapshot begun while its volume's delete runs: one of the two is refused,
    never a deleting volume with a live snapshot."""
    for _ in range(10):
        vid = await api.volume()
        await api.made(vid)
        snapped, deleted = await asyncio.gather(
            api.call("POST", "/os-snapshots", {"snapshot": {"volume_id": vid}}),
            api.call("DELETE", f"/os-volumes/{vid}"))
        assert sorted([snapped[0], deleted[0]]) == [202, 400], (snapped, deleted)
        async with api.pool.acquire() as conn:
            status = await conn.fetchval("SELECT status FROM volumes WHERE id = $1",
                                         uuid.UUID(vid))
            live = await volume_db.live_snapshots(conn, uuid.UUID(vid))
        assert (status, live) in (("available", 1), ("deleting", 0))


async def test_volume_from_snapshot_and_snapshot_delete_racing(api: Api) -> None:
    """A volume made from a snapshot while the snapshot's delete runs: either the
    volume is refused, or the delete is."""
    vid = await api.volume()
    await api.made(vid)
    for _ in range(10):
        status, body = await api.call("POST", "/os-snapshots", {"snapshot": {"volume_id": vid}})
        sid = body["snapshot"]["id"]
        await api.snapshot_made(sid)
        made, deleted = await asyncio.gather(
            api.call("POST", "/os-volumes", {"volume": {"snapshot_id": sid}}),
            api.call("DELETE", f"/os-snapshots/{sid}"))
        assert sorted([made[0], deleted[0]]) == [202, 400], (made, deleted)
        if made[0] == 202:
            await api.made(made[1]["volume"]["id"])
            assert (await api.call("DELETE", f"/os-snapshots/{sid}"))[0] == 202
        else:
            assert "must be available to make a volume" in made[1]["badRequest"]["message"]
    async with api.pool.acquire() as conn:
        # The source volume's snapshots are all deleting now: it is deletable once they go.
        assert await conn.fetchval("SELECT count(*) FROM volume_snapshots WHERE volume_id = $1 "
                                   "AND status <> 'deleting'", uuid.UUID(vid)) == 0
