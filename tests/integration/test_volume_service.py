"""The volume service against real PostgreSQL, RabbitMQ and ``qemu-img``.

The service's own Worker (``services.volume.app``) serves the ``volume`` queue
on the test's vhost; each test writes rows as the API does, casts the message
(twice, as an at-least-once broker may), waits for the row to settle and reads
the files' bits with QEMU's tools. A repeat after the work is done is handled
by a second handler on the same database and store, as another volume service
process would.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import msgspec
import pytest

from services.volume.app import create_worker
from services.volume.backends import BackendContext, make_backend
from services.volume.handler import VolumeHandler
from services.volume.settings import Settings, VolumeSettings
from shared.config import AmqpSettings, DatabaseSettings
from shared.contracts.volume import (
    QUEUE,
    CreateSnapshot,
    CreateVolume,
    DeleteSnapshot,
    DeleteVolume,
    VolumeConnection,
    VolumeMessage,
)
from shared.db import volumes
from shared.db.pool import connect as db_connect
from shared.image_store import ImageStore, ImageStoreSettings
from shared.rpc import RpcClient, connect
from shared.rpc.server import CallContext, dead_letter_queue
from shared.volume_store import VolumeStore, VolumeStoreSettings
from shared.worker import Worker
from tests.e2e.client import eventually
from tests.integration.volume_rows import (
    add_image,
    add_snapshot,
    add_volume,
    begin_delete,
    begin_snapshot_delete,
    settled_snapshot,
    settled_volume,
)
from tests.volume_bits import GIB, holds_pattern, raw_image, virtual_size, write_pattern

# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def settings(db_url: str, amqp_url: str, tmp_path: Path) -> Settings:
    return Settings(database=DatabaseSettings(url=db_url), amqp=AmqpSettings(url=amqp_url),
                    volume=VolumeSettings(types={"standard": {}, "gold": {"tier": "1"}}),
                    volumes=VolumeStoreSettings(dir=str(tmp_path / "volumes")),
                    images=ImageStoreSettings(dir=str(tmp_path / "images")))


@asynccontextmanager
async def run_worker(settings: Settings) -> AsyncIterator[Worker]:
    worker = await create_worker(settings)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.started.wait(), 30)
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
        # Worker.run took SIGTERM/SIGINT for this loop; give them back to pytest.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Worker]:
    """The volume service, running in-process until the test ends."""
    async with run_worker(settings) as worker:
        yield worker


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await db_connect(db_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def store(settings: Settings) -> VolumeStore:
    return VolumeStore.from_settings(settings.volumes)


@pytest.fixture
def images(settings: Settings) -> Path:
    path = Path(settings.images.dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def again(service: Worker, settings: Settings, store: VolumeStore) -> VolumeHandler:
    """Another handler on the same database and store (a second volume service)."""
    backend = make_backend("file", BackendContext(store=store, tool_timeout_s=60))
    return VolumeHandler(service.pool, backend, ImageStore.from_settings(settings.images))


async def twice(rpc: RpcClient, msg: msgspec.Struct, request_id: str | None = None) -> None:
    """Cast ``msg`` twice, as a broker redelivering it would."""
    for _ in range(2):
        await rpc.cast(QUEUE, msg, request_id=request_id)


def files(store: VolumeStore) -> list[str]:
    root = Path(store.root)
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def connection(row: asyncpg.Record) -> VolumeConnection:
    made = volumes.connection_of(row)
    assert made is not None
    return made


async def create(db: asyncpg.Connection, rpc: RpcClient, size_gb: int = 1,
                 **source: uuid.UUID) -> asyncpg.Record:
    rid = f"req-{uuid.uuid4()}"
    vid = await add_volume(db, size_gb, request_id=rid, **source)
    await twice(rpc, CreateVolume(volume_id=vid), rid)
    return await settled_volume(db, vid)


async def snapshot(db: asyncpg.Connection, rpc: RpcClient, volume_id: uuid.UUID) -> asyncpg.Record:
    sid = await add_snapshot(db, volume_id)
    await twice(rpc, CreateSnapshot(snapshot_id=sid))
    return await settled_snapshot(db, sid)


async def delete(db: asyncpg.Connection, rpc: RpcClient, volume_id: uuid.UUID) -> asyncpg.Record:
    rid = f"req-{uuid.uuid4()}"
    await begin_delete(db, volume_id, rid)
    await twice(rpc, DeleteVolume(volume_id=volume_id), rid)
    return await settled_volume(db, volume_id)


# --------------------------------------------------------------------------- create


async def test_the_configured_volume_types_are_written_at_start(service, db):
    rows = await db.fetch("SELECT id, name, extra_specs FROM volume_types ORDER BY name")
    assert [(r["id"], r["name"], r["extra_specs"]) for r in rows] == [
        (volumes.volume_type_id("gold"), "gold", {"tier": "1"}),
        (volumes.volume_type_id("standard"), "standard", {})]


async def test_a_blank_volume_is_a_file_of_its_size(service, db, rpc, store, again):
    row = await create(db, rpc, 2)
    assert (row["status"], row["bootable"], row["error_reason"]) == ("available", False, None)
    made = connection(row)
    assert made.driver_volume_type == "file" and made.format == "qcow2"
    assert virtual_size(store.connect(made)) == 2 * GIB
    assert files(store) == [made.name]

    await again(CreateVolume(volume_id=row["id"]), CallContext())  # long after: nothing
    assert await volumes.get(db, row["id"]) == row


async def test_a_volume_from_an_image_carries_its_bytes_and_boots(service, db, rpc, store,
                                                                  images):
    raw_image(images / "tiny.raw", 64 * 1024 * 1024, pattern=0x5a)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(images / "tiny.raw"),
                    str(images / "tiny.qcow2")], check=True)
    for location, fmt in (("tiny.raw", "raw"), ("tiny.qcow2", "qcow2")):
        iid = await add_image(db, location, fmt)
        row = await create(db, rpc, 3, image_id=iid)
        assert (row["status"], row["bootable"]) == ("available", True), fmt
        path = store.connect(connection(row))
        assert holds_pattern(path, 0x5a) and virtual_size(path) == 3 * GIB, fmt
        assert not holds_pattern(path, 0x5a, offset=64 * 1024 * 1024), fmt


async def test_snapshot_data_outlives_the_volume_and_fills_new_volumes(service, db, rpc, store):
    source = await create(db, rpc, 1)
    source_path = store.connect(connection(source))
    write_pattern(source_path, 0x5a)  # what a guest wrote

    snap = await snapshot(db, rpc, source["id"])
    assert (snap["status"], snap["error_reason"]) == ("available", None)
    snap_path = store.path(snap["location"])
    assert holds_pattern(snap_path, 0x5a)
    write_pattern(source_path, 0x11)  # later writes stay out of the snapshot
    assert holds_pattern(snap_path, 0x5a) and not holds_pattern(snap_path, 0x11)

    gone = await delete(db, rpc, source["id"])
    assert gone["deleted_at"] is not None and gone["connection"] is None
    assert not source_path.exists() and holds_pattern(snap_path, 0x5a)

    copy = await create(db, rpc, 2, snapshot_id=snap["id"])
    assert (copy["status"], copy["bootable"]) == ("available", False)
    copy_path = store.connect(connection(copy))
    assert holds_pattern(copy_path, 0x5a) and virtual_size(copy_path) == 2 * GIB


async def test_a_volume_from_a_bootable_volume_s_snapshot_is_bootable(service, db, rpc, store,
                                                                      images):
    raw_image(images / "boot.raw", 1024 * 1024, pattern=0x42)
    booted = await create(db, rpc, 1, image_id=await add_image(db, "boot.raw"))
    snap = await snapshot(db, rpc, booted["id"])
    copy = await create(db, rpc, 1, snapshot_id=snap["id"])
    assert copy["bootable"] is True
    assert holds_pattern(store.connect(connection(copy)), 0x42)


async def test_a_volume_in_use_by_a_running_qemu_is_snapshotted(service, db, rpc, store):
    volume = await create(db, rpc, 1)
    path = store.connect(connection(volume))
    # qemu-io holds the image open, and its write lock, as a guest's QEMU does.
    qemu = await asyncio.create_subprocess_exec(
        "qemu-io", "-f", "qcow2", str(path), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert qemu.stdin is not None and qemu.stdout is not None
    try:
        qemu.stdin.write(b"write -P 0x5a 0 1M\nflush\n")
        await qemu.stdin.drain()
        line = b""
        while b"wrote" not in line:
            line = await asyncio.wait_for(qemu.stdout.readline(), 30)
            assert line, "qemu-io exited"
        locked = subprocess.run(["qemu-img", "info", str(path)], capture_output=True, text=True)
        assert "lock" in locked.stderr  # without force-share it could not be read

        snap = await snapshot(db, rpc, volume["id"])
    finally:
        qemu.stdin.write(b"quit\n")
        await qemu.stdin.drain()
        await asyncio.wait_for(qemu.wait(), 30)
    assert snap["status"] == "available"
    assert holds_pattern(store.path(snap["location"]), 0x5a)


# --------------------------------------------------------------------------- failures


async def test_a_create_from_an_image_without_its_file_ends_in_error(service, db, rpc, store):
    lost = await add_image(db, "lost.raw")
    row = await create(db, rpc, 1, image_id=lost)
    assert row["status"] == "error" and row["connection"] is None
    assert row["error_reason"] == "The volume could not be made from the image. The image has no data."
    deleted = await add_image(db, "lost.raw", status="DELETED")
    row = await create(db, rpc, 1, image_id=deleted)
    assert row["error_reason"] == f"Image {deleted} is not available."
    assert files(store) == []


async def test_a_create_from_a_snapshot_that_is_not_available_ends_in_error(service, db, rpc):
    volume = await create(db, rpc, 1)
    sid = await add_snapshot(db, volume["id"])  # still creating: no message sent for it
    row = await create(db, rpc, 1, snapshot_id=sid)
    assert (row["status"], row["error_reason"]) == ("error", f"Snapshot {sid} is not available.")


async def test_an_image_too_big_for_the_volume_ends_in_error(service, db, rpc, images):
    raw_image(images / "big.raw", 2 * GIB)
    row = await create(db, rpc, 1, image_id=await add_image(db, "big.raw"))
    assert row["error_reason"] == ("The volume could not be made from the image. The image's "
                                   "disk (2 GB) is larger than the volume (1 GB).")


async def test_a_volume_in_error_can_be_deleted(service, db, rpc):
    row = await create(db, rpc, 1, image_id=await add_image(db, None))
    assert (row["status"], row["error_reason"]) == ("error", f"Image {row['image_id']} has no data.")
    assert (await delete(db, rpc, row["id"]))["deleted_at"] is not None


async def test_a_delete_that_cannot_remove_the_bits_ends_in_error_deleting(service, db, rpc,
                                                                           store, again):
    volume = await create(db, rpc, 1)
    path = store.connect(connection(volume))
    path.unlink()
    path.mkdir()  # something in the way that cannot be unlinked
    (path / "held").write_text("x")

    row = await delete(db, rpc, volume["id"])
    assert (row["status"], row["deleted_at"]) == ("error_deleting", None)
    assert row["error_reason"] == "The volume's data could not be removed."

    (path / "held").unlink()
    path.rmdir()
    row = await delete(db, rpc, volume["id"])  # the way out of error_deleting
    assert row["deleted_at"] is not None


async def test_snapshot_delete_removes_its_file(service, db, rpc, store, again):
    volume = await create(db, rpc, 1)
    snap = await snapshot(db, rpc, volume["id"])
    assert files(store) == sorted([connection(volume).name, snap["location"]])

    await begin_snapshot_delete(db, snap["id"])
    await twice(rpc, DeleteSnapshot(snapshot_id=snap["id"]))
    row = await settled_snapshot(db, snap["id"])
    assert row["deleted_at"] is not None and row["location"] is None
    assert files(store) == [connection(volume).name]
    await again(DeleteSnapshot(snapshot_id=snap["id"]), CallContext())
    assert await volumes.get_snapshot(db, snap["id"]) == row


async def test_a_snapshot_of_a_volume_without_data_ends_in_error(service, db, rpc):
    volume = await add_volume(db, 1, status="error")
    row = await snapshot(db, rpc, volume)
    assert (row["status"], row["error_reason"]) == ("error",
                                                    f"Volume {volume} has no data to copy.")


# --------------------------------------------------------------------------- give up


@pytest.fixture
def impatient(settings: Settings) -> Settings:
    """Statements cut short at 0.3 s, and messages given up on after 1.5 s of that."""
    return msgspec.structs.replace(
        settings,
        database=msgspec.structs.replace(settings.database, command_timeout_s=0.3),
        amqp=msgspec.structs.replace(settings.amqp, retry_first_delay_s=0.1,
                                     retry_max_delay_s=0.3, retry_deadline_s=1.5))


async def test_a_create_whose_retries_run_out_ends_in_error(impatient, db_url, amqp_url, db,
                                                             rpc):
    iid = await add_image(db, "any.raw")
    vid = await add_volume(db, 1, image_id=iid)
    locker = await db_connect(db_url)
    try:
        async with run_worker(impatient), locker.transaction():
            # The images table stays locked: every try times out reading the image (a
            # transient failure), until the message is given up on.
            await locker.execute("LOCK TABLE images IN ACCESS EXCLUSIVE MODE")
            await rpc.cast(QUEUE, CreateVolume(volume_id=vid), request_id=None)
            row = await settled_volume(db, vid)
            letters = await dead_letters(amqp_url)
    finally:
        await locker.close()
    assert (row["status"], row["error_reason"]) == (
        "error", "The volume could not be created: a service it needs stayed unavailable.")
    assert letters == [CreateVolume(volume_id=vid)]


async def dead_letters(amqp_url: str) -> list[VolumeMessage]:
    """The messages in ``volume.dead-letter`` once there are some."""
    broker = await connect(amqp_url)
    try:
        channel = await broker.channel()
        queue = await channel.declare_queue(dead_letter_queue(QUEUE), durable=True)

        async def some() -> list[VolumeMessage]:
            got = []
            while (m := await queue.get(no_ack=True, fail=False)) is not None:
                got.append(msgspec.json.decode(m.body, type=VolumeMessage))
            return got
        return await eventually(some, timeout=10)
    finally:
        await broker.close()


async def test_give_up_ends_each_operation_in_its_failed_status(service, db, rpc, again):
    creating = await add_volume(db, 1)
    deleting = await add_volume(db, 1, status="deleting")
    volume = await create(db, rpc, 1)
    snap_creating = await add_snapshot(db, volume["id"])
    snap_deleting = (await snapshot(db, rpc, volume["id"]))["id"]
    await begin_snapshot_delete(db, snap_deleting)
    gave_up = TimeoutError()

    await again.give_up(CreateVolume(volume_id=creating), CallContext(), gave_up)
    await again.give_up(DeleteVolume(volume_id=deleting), CallContext(), gave_up)
    await again.give_up(CreateSnapshot(snapshot_id=snap_creating), CallContext(), gave_up)
    await again.give_up(DeleteSnapshot(snapshot_id=snap_deleting), CallContext(), gave_up)
    await again.give_up(CreateVolume(volume_id=volume["id"]), CallContext(), gave_up)

    why = "a service it needs stayed unavailable."
    for vid, status, what in ((creating, "error", "created"),
                              (deleting, "error_deleting", "deleted")):
        row = await volumes.get(db, vid)
        assert (row["status"], row["error_reason"]) == (
            status, f"The volume could not be {what}: {why}")
    for sid, status, what in ((snap_creating, "error", "made"),
                              (snap_deleting, "error_deleting", "deleted")):
        row = await volumes.get_snapshot(db, sid)
        assert (row["status"], row["error_reason"]) == (
            status, f"The snapshot could not be {what}: {why}")
    assert await volumes.get(db, volume["id"]) == volume  # no longer creating: left alone
