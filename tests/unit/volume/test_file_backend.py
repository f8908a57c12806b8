"""The file backend on a temporary volume store, with the real ``qemu-img``.

The data path through the service (snapshots carrying data, volumes from images)
is in ``tests/integration/test_volume_service.py``; here: sizes, modes,
repeats, refusals and the wording of failures.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from services.volume.backends import BackendContext, BackendError, make_backend
from services.volume.backends.file import FileBackend, snapshot_file, volume_file
from shared.contracts.volume import VolumeConnection
from shared.volume_store import VolumeStore
from tests.volume_bits import GIB, holds_pattern, raw_image, virtual_size, write_pattern


@pytest.fixture
def store(tmp_path: Path) -> VolumeStore:
    return VolumeStore(str(tmp_path / "volumes"))


@pytest.fixture
def backend(store: VolumeStore) -> FileBackend:
    made = make_backend("file", BackendContext(store=store, tool_timeout_s=60))
    assert isinstance(made, FileBackend)
    return made


def files(store: VolumeStore) -> list[str]:
    return sorted(p.name for p in Path(store.root).iterdir())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_blank_volume_is_an_owner_only_qcow2_of_its_size(backend, store):
    vid = uuid.uuid4()
    connection = await backend.create_blank(vid, 3)
    assert connection == VolumeConnection(driver_volume_type="file", name=volume_file(vid),
                                          format="qcow2")
    path = store.connect(connection)
    assert virtual_size(path) == 3 * GIB
    assert mode(path) == 0o600 and mode(Path(store.root)) == 0o700
    assert files(store) == [volume_file(vid)]  # no .part left behind


async def test_a_store_made_open_by_someone_else_is_closed_to_others(backend, store):
    Path(store.root).mkdir(mode=0o755)
    os.chmod(store.root, 0o755)
    await backend.create_blank(uuid.uuid4(), 1)
    assert mode(Path(store.root)) == 0o700


async def test_a_repeated_create_leaves_the_volume_as_it_is(backend, store):
    vid = uuid.uuid4()
    path = store.connect(await backend.create_blank(vid, 1))
    write_pattern(path, 0x33)
    before = path.stat().st_ino
    again = await backend.create_blank(vid, 1)
    assert store.connect(again) == path and path.stat().st_ino == before
    assert holds_pattern(path, 0x33)


async def test_delete_removes_the_volume_and_what_a_dead_create_left(backend, store):
    vid, other = uuid.uuid4(), uuid.uuid4()
    await backend.create_blank(vid, 1)
    await backend.create_blank(other, 1)
    (Path(store.root) / f"{volume_file(vid)}.0123456789ab.part").write_bytes(b"half")
    await backend.delete(vid)
    assert files(store) == [volume_file(other)]
    await backend.delete(vid)  # again: nothing to do
    await backend.delete(uuid.uuid4())  # never made
    assert files(store) == [volume_file(other)]


async def test_a_snapshot_is_a_file_of_its_own(backend, store):
    vid, sid = uuid.uuid4(), uuid.uuid4()
    connection = await backend.create_blank(vid, 1)
    location = await backend.snapshot(sid, connection)
    assert location == snapshot_file(sid)
    path = store.path(location)
    assert mode(path) == 0o600 and virtual_size(path) == GIB
    assert not os.path.samefile(path, store.connect(connection))
    assert await backend.snapshot(sid, connection) == location  # a repeat
    await backend.delete_snapshot(sid, location)
    await backend.delete_snapshot(sid, location)
    assert files(store) == [volume_file(vid)]


async def test_a_volume_from_a_smaller_image_is_grown_to_its_size(backend, store, tmp_path):
    image = raw_image(tmp_path / "img.raw", 64 * 1024 * 1024, pattern=0x5a)
    connection = await backend.create_from_image(uuid.uuid4(), 2, image, "raw")
    path = store.connect(connection)
    assert virtual_size(path) == 2 * GIB and holds_pattern(path, 0x5a)


async def test_an_image_larger_than_the_volume_is_refused(backend, store, tmp_path):
    image = raw_image(tmp_path / "big.raw", 2 * GIB + 1)
    with pytest.raises(BackendError) as caught:
        await backend.create_from_image(uuid.uuid4(), 2, image, "raw")
    assert str(caught.value) == ("The volume could not be made from the image. The image's disk "
                                 "(3 GB) is larger than the volume (2 GB).")
    assert not Path(store.root).exists() or files(store) == []


async def test_an_image_that_reads_other_files_is_refused(backend, store, tmp_path):
    secret = raw_image(tmp_path / "host-secret.raw", 1024 * 1024, pattern=0x77)
    image = tmp_path / "sneaky.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(secret),
                    str(image)], check=True)
    with pytest.raises(BackendError, match=r"^The volume could not be made from the image\. "
                                           r"The image refers to other files\.$"):
        await backend.create_from_image(uuid.uuid4(), 1, image, "qcow2")
    assert not Path(store.root).exists() or files(store) == []


async def test_a_tool_failure_is_told_without_its_output(backend, store, tmp_path):
    garbage = tmp_path / "garbage.qcow2"
    garbage.write_bytes(b"not a qcow2 image at all" * 100)
    with pytest.raises(BackendError) as caught:
        await backend.create_from_image(uuid.uuid4(), 1, garbage, "qcow2")
    # Exactly the sentence: no path, no qemu-img text.
    assert str(caught.value) == "The volume could not be made from the image."
    assert not Path(store.root).exists() or files(store) == []


async def test_a_missing_source_is_told(backend, store, tmp_path):
    with pytest.raises(BackendError, match="The image has no data"):
        await backend.create_from_image(uuid.uuid4(), 1, tmp_path / "gone.raw", "raw")
    with pytest.raises(BackendError, match="The snapshot's data is gone"):
        await backend.create_from_snapshot(uuid.uuid4(), 1, snapshot_file(uuid.uuid4()))
    gone = VolumeConnection(name=volume_file(uuid.uuid4()))
    with pytest.raises(BackendError, match="The volume's data is gone"):
        await backend.snapshot(uuid.uuid4(), gone)
    elsewhere = VolumeConnection(driver_volume_type="rbd", name="pool/vol")
    with pytest.raises(BackendError, match="not in this volume store"):
        await backend.snapshot(uuid.uuid4(), elsewhere)


async def test_a_tool_that_runs_too_long_is_stopped(store):
    slow = FileBackend(store, tool_timeout_s=0.000001)
    with pytest.raises(BackendError, match=r"^The volume could not be created\. It did not "
                                           r"finish within 1e-06 s\.$"):
        await slow.create_blank(uuid.uuid4(), 1)
    assert files(store) == []


async def test_leftovers_untouched_for_long_are_removed(backend, store):
    await backend.create_blank(uuid.uuid4(), 1)
    root = Path(store.root)
    old, fresh = root / "volume-x.qcow2.aaaaaaaaaaaa.part", root / "volume-y.qcow2.bbbbbbbbbbbb.part"
    old.write_bytes(b"")
    fresh.write_bytes(b"")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert await backend.remove_leftovers(600) == 1
    assert not old.exists() and fresh.exists()


def test_an_unknown_backend_is_a_configuration_error(store):
    with pytest.raises(SystemExit, match="unknown volume backend 'lvm'; choose one of file"):
        make_backend("lvm", BackendContext(store=store, tool_timeout_s=1))
