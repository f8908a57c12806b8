"""The fake driver's rebuild, snapshot and VNC endpoint: what the rest of the system
sees of them (the guest, its console log, its record on disk, a real RFB server)."""

from __future__ import annotations

import asyncio
import struct
import tempfile
import uuid
from pathlib import Path

import pytest

from services.compute_agent.drivers import DriverError, GuestSpec
from services.compute_agent.drivers.fake import FakeDriver, FakeSettings
from shared.contracts.common import FlavorSpec, ImageSpec, Port
from shared.contracts.compute import InjectedFile
from shared.image_store import ImageStore
from shared.states import PowerState
from tests.unit.compute_agent.guests import guest_spec, replace_spec

FLAVOR = FlavorSpec(id="100", name="standard.xsmall", ram_mb=1024, disk_gb=10, vcpus=1)
CIRROS = ImageSpec(id=uuid.uuid4(), name="cirros", size_bytes=13147648)
DEBIAN = ImageSpec(id=uuid.uuid4(), name="debian", size_bytes=524288000)
PORT = Port(id=uuid.uuid4(), network_id=uuid.uuid4(), network_name="private",
            address="10.0.0.5", mac="fa:16:3e:00:00:05")


def _spec(**kw) -> GuestSpec:
    fields = {"server_id": uuid.uuid4(), "name": "vm", "flavor": FLAVOR, "image": CIRROS,
              "ports": (PORT,), **kw}
    return guest_spec(**fields)


def _driver(state_dir: Path | None = None, **kw) -> FakeDriver:
    fields = {"spawn_delay_s": 0.01, "destroy_delay_s": 0, "snapshot_delay_s": 0.01,
              "state_dir": str(state_dir or ""), **kw}
    return FakeDriver(FakeSettings(**fields), host="fake-1",
                      image_store=ImageStore(tempfile.mkdtemp(prefix="nimbus-images-")))


async def test_rebuild_boots_the_new_image_with_the_same_ports_and_logs_it():
    driver, spec = _driver(), _spec()
    await driver.spawn(spec)
    await driver.rebuild(replace_spec(spec, image=DEBIAN, name="vm2"))
    info = await driver.get_info(spec.server_id)
    assert info is not None and info.power_state is PowerState.RUNNING
    console = await driver.console_output(spec.server_id)
    lines = console.splitlines()
    rebuilt = next(i for i, line in enumerate(lines) if "rebuilding guest vm from image debian" in line)
    # A fresh boot after the rebuild line, on the same address.
    after = "\n".join(lines[rebuilt:])
    assert "Booting the kernel." in after and "10.0.0.5" in after and "vm2 login:" in after
    assert console.count("Booting the kernel.") == 2
    assert await driver.list_instances() == [spec.server_id]


async def test_rebuild_rewrites_the_record_and_keeps_user_data(tmp_path):
    driver = _driver(tmp_path)
    spec = _spec(user_data=b"#!/bin/sh\necho hi\n",
                 files=(InjectedFile(path="/etc/old.conf", contents=b"old"),))
    await driver.spawn(spec)
    record = tmp_path / "fake-1" / str(spec.server_id)
    assert (record / "files" / "etc" / "old.conf").read_bytes() == b"old"
    await driver.rebuild(replace_spec(
        spec, image=DEBIAN, user_data=None,
        files=(InjectedFile(path="/etc/new.conf", contents=b"new"),)))
    assert not (record / "files" / "etc" / "old.conf").exists()
    assert (record / "files" / "etc" / "new.conf").read_bytes() == b"new"
    assert (record / "user_data").read_bytes() == b"#!/bin/sh\necho hi\n"


async def test_rebuild_keeps_the_config_drive_key_and_writes_new_metadata(tmp_path):
    driver = _driver(tmp_path)
    spec = _spec(metadata={"a": "1"}, config_drive=True,
                 public_keys={"test": "ssh-rsa AAAA test"}, user_data=b"ud")
    await driver.spawn(spec)
    await driver.rebuild(replace_spec(spec, metadata={"b": "2"}, public_keys={}, user_data=None))
    drive = tmp_path / "fake-1" / str(spec.server_id) / "config_drive"
    assert (drive / "meta.js").read_text() == '{"b": "2"}'
    assert (drive / "public_key").read_text() == "ssh-rsa AAAA test"
    assert (drive / "user_data").read_bytes() == b"ud"


async def test_rebuild_of_a_guest_the_driver_lost_creates_it():
    driver, spec = _driver(), _spec()
    await driver.rebuild(spec)
    info = await driver.get_info(spec.server_id)
    assert info is not None and info.power_state is PowerState.RUNNING


async def test_rebuild_of_a_guest_destroyed_meanwhile_fails():
    driver, spec = _driver(spawn_delay_s=0.3), _spec()
    await driver.spawn(spec)
    rebuild = asyncio.create_task(driver.rebuild(replace_spec(spec, image=DEBIAN)))
    await asyncio.sleep(0.1)
    await driver.destroy(spec.server_id)
    with pytest.raises(DriverError):
        await rebuild
    assert await driver.get_info(spec.server_id) is None


async def test_snapshot_sizes_the_disk_within_the_flavor_and_logs_it():
    driver = _driver()
    spec = _spec(files=(InjectedFile(path="/a", contents=b"x" * 100_000),))
    await driver.spawn(spec)
    image_id = uuid.uuid4()
    file = await driver.snapshot(spec.server_id, image_id)
    size = file.size_bytes
    assert CIRROS.size_bytes + 100_000 <= size <= FLAVOR.disk_gb * 2**30
    assert size % 65536 == 0
    # A real file in the store, its size the image's size, saying what it was made of.
    assert file.location == f"{image_id}.raw" and file.disk_format == "raw"
    path = driver._images.path(file.location)
    assert path.stat().st_size == size
    assert str(spec.server_id).encode() in path.read_bytes()[:512]
    console = await driver.console_output(spec.server_id)
    assert f"snapshot of the root disk done ({size} bytes)" in console
    big = _spec(image=replace_spec(DEBIAN, size_bytes=50 * 2**30))
    await driver.spawn(big)
    assert (await driver.snapshot(big.server_id, uuid.uuid4())).size_bytes == \
        FLAVOR.disk_gb * 2**30


async def test_snapshot_of_an_unknown_or_vanishing_guest_fails():
    driver = _driver()
    with pytest.raises(DriverError):
        await driver.snapshot(uuid.uuid4(), uuid.uuid4())
    slow = _driver(snapshot_delay_s=0.5)
    spec = _spec()
    await slow.spawn(spec)
    image_id = uuid.uuid4()
    snap = asyncio.create_task(slow.snapshot(spec.server_id, image_id))
    await asyncio.sleep(0.05)
    await slow.destroy(spec.server_id)
    with pytest.raises(DriverError):
        await snap
    assert list(Path(slow._images.root).iterdir()) == []  # nothing half-written is left


async def _rfb_handshake(host: str, port: int) -> tuple[bytes, int, int, str]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        banner = await reader.readexactly(12)
        writer.write(b"RFB 003.008\n")
        count = (await reader.readexactly(1))[0]
        types = await reader.readexactly(count)
        assert 1 in types
        writer.write(b"\x01")
        assert struct.unpack(">I", await reader.readexactly(4))[0] == 0
        writer.write(b"\x01")
        init = await reader.readexactly(24)
        width, height = struct.unpack(">HH", init[:4])
        name = (await reader.readexactly(struct.unpack(">I", init[20:24])[0])).decode()
        # A full update request is answered (with no rectangles).
        writer.write(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))
        assert await reader.readexactly(4) == b"\x00\x00\x00\x00"
        return banner, width, height, name
    finally:
        writer.close()


async def test_vnc_endpoint_is_a_real_rfb_server_until_the_guest_goes():
    driver, spec = _driver(), _spec(name="desk")
    await driver.spawn(spec)
    host, port = await driver.vnc_endpoint(spec.server_id)
    assert host == "127.0.0.1"
    assert await driver.vnc_endpoint(spec.server_id) == (host, port)  # the same while it runs
    banner, width, height, name = await _rfb_handshake(host, port)
    assert banner == b"RFB 003.008\n" and (width, height) == (640, 480) and name == "desk"
    await driver.destroy(spec.server_id)
    with pytest.raises(OSError):
        await asyncio.open_connection(host, port)


async def test_vnc_on_all_addresses_is_reached_at_the_hosts_own():
    # In a container the console proxy runs elsewhere: a wildcard listen advertises
    # the address the agent's hostname has (the container's), which answers.
    import socket

    own = socket.gethostbyname(socket.gethostname())
    driver, spec = _driver(vnc_listen="0.0.0.0"), _spec(name="far")
    await driver.spawn(spec)
    host, port = await driver.vnc_endpoint(spec.server_id)
    assert host == own
    banner, *_, name = await _rfb_handshake(host, port)
    assert banner == b"RFB 003.008\n" and name == "far"
    await driver.destroy(spec.server_id)
    named = _driver(vnc_listen="0.0.0.0", vnc_address="agent-1.example")
    await named.spawn(spec)
    assert (await named.vnc_endpoint(spec.server_id))[0] == "agent-1.example"
    await named.destroy(spec.server_id)


async def test_vnc_endpoint_of_a_missing_or_stopped_guest_is_none():
    driver, spec = _driver(), _spec()
    assert await driver.vnc_endpoint(spec.server_id) is None
    await driver.spawn(spec)
    driver.fake_host.stop(spec.server_id)  # the guest shuts itself down
    assert await driver.vnc_endpoint(spec.server_id) is None
    await driver.destroy(spec.server_id)


async def test_two_console_requests_at_once_share_one_vnc_server():
    driver, spec = _driver(), _spec()
    await driver.spawn(spec)
    first, second = await asyncio.gather(driver.vnc_endpoint(spec.server_id),
                                         driver.vnc_endpoint(spec.server_id))
    assert first == second
    await driver.destroy(spec.server_id)
