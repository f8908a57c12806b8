"""The libvirt driver against libvirt's own ``test:///default`` driver.

That driver runs no QEMU and reads no disk, so the driver writes placeholder
disks (``fake_disks``); everything said to libvirt is real: definitions, states,
lifecycle events, errors. Its state is shared by every connection of the process,
so tests use fresh server ids and never assume an empty host.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import libvirt
import msgspec
import pytest

from services.compute_agent.drivers.base import (
    DriverContext,
    DriverError,
    GuestConfig,
    GuestNotFound,
    GuestSpec,
    HypervisorUnavailable,
)
from services.compute_agent.drivers.libvirt.connection import Connection, translate
from services.compute_agent.drivers.libvirt.driver import LibvirtDriver
from services.compute_agent.drivers.libvirt.settings import LibvirtSettings
from services.compute_agent.drivers.libvirt.states import power_state
from shared.contracts.common import FlavorSpec, ImageSpec, Port
from shared.contracts.compute import InjectedFile
from shared.image_store import ImageStore
from shared.states import PowerState

FLAVOR = FlavorSpec(id="1", name="small", ram_mb=256, disk_gb=1, vcpus=1)


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[LibvirtDriver]:
    store = tmp_path / "images"
    store.mkdir()
    (store / "tiny.qcow2").write_bytes(b"not really an image")
    ctx = DriverContext(host="h1", image_store=ImageStore(str(store)))
    d = LibvirtDriver.from_settings(LibvirtSettings(uri="test:///default",
                                                    state_dir=str(tmp_path / "state"),
                                                    fake_disks=True), ctx)
    await d.init_host()
    yield d
    await d.cleanup()


def _spec(**config: object) -> GuestSpec:
    port = Port(id=uuid.uuid4(), network_id=uuid.uuid4(), network_name="n", address="10.0.0.5",
                mac="fa:16:3e:00:00:05", cidr="10.0.0.0/24")
    image = ImageSpec(id=uuid.uuid4(), name="tiny", location="tiny.qcow2", disk_format="qcow2")
    cfg: dict[str, object] = {"hostname": "vm", "config_drive": True, "user_data": b"#!/bin/sh\n"}
    cfg.update(config)
    return GuestSpec(server_id=uuid.uuid4(), name="vm", flavor=FLAVOR, image=image,
                     ports=(port,), config=GuestConfig(**cfg))  # type: ignore[arg-type]


async def test_every_guest_gets_a_config_drive_unless_that_is_turned_off(driver, tmp_path):
    # No metadata service: the drive is how a guest learns who it is (Nova's
    # force_config_drive), asked for or not.
    spec = _spec(config_drive=False, user_data=None)
    await driver.spawn(spec)
    assert (driver.guest_dir(spec.server_id) / "config.iso").is_file()
    ctx = DriverContext(host="h2", image_store=ImageStore(str(tmp_path / "images")))
    lean = LibvirtDriver.from_settings(LibvirtSettings(
        uri="test:///default", state_dir=str(tmp_path / "state2"), fake_disks=True,
        force_config_drive=False), ctx)
    await lean.init_host()
    try:
        spec = _spec(config_drive=False, user_data=None)
        await lean.spawn(spec)
        assert not (lean.guest_dir(spec.server_id) / "config.iso").exists()
        with_files = _spec(config_drive=False, files=(InjectedFile(path="/etc/x", contents=b"x"),))
        await lean.spawn(with_files)  # injected files need a drive to travel on
        assert (lean.guest_dir(with_files.server_id) / "config.iso").is_file()
    finally:
        await lean.cleanup()


async def test_what_the_user_gave_is_owner_only_on_the_host(driver: LibvirtDriver):
    spec = _spec(admin_pass="s3cret-pass")
    await driver.spawn(spec)
    guest = driver.guest_dir(spec.server_id)
    assert guest.stat().st_mode & 0o077 == 0
    assert (guest / "config.iso").stat().st_mode & 0o077 == 0
    assert b"s3cret-pass" not in (guest / "spec.json").read_bytes()


async def test_an_image_written_again_is_a_new_cache_entry(driver: LibvirtDriver, tmp_path):
    first = _spec()
    await driver.spawn(first)
    base = driver.home / "base"
    [old] = list(base.iterdir())
    store = tmp_path / "images"
    (store / "new").write_bytes(b"a rebuilt image, longer than the first")
    os.replace(store / "new", store / "tiny.qcow2")  # as a rebuilt seed image is written
    await driver.spawn(_spec())
    entries = sorted(base.iterdir())
    assert len(entries) == 2 and old in entries  # the first guest keeps its own
    assert {p.read_bytes() for p in entries} == {
        b"not really an image", b"a rebuilt image, longer than the first"}


async def _state(d: LibvirtDriver, spec: GuestSpec) -> PowerState:
    info = await d.get_info(spec.server_id)
    assert info is not None
    return info.power_state


async def test_spawn_defines_and_runs_the_guest_with_its_files(driver: LibvirtDriver):
    spec = _spec()
    await driver.spawn(spec)
    info = await driver.get_info(spec.server_id)
    assert info is not None
    assert (info.power_state, info.ram_mb, info.vcpus, info.rescued) == (
        PowerState.RUNNING, 256, 1, False)
    ids = await driver.list_instances()
    assert spec.server_id in ids and all(isinstance(i, uuid.UUID) for i in ids)  # not 'test'
    guest = driver.guest_dir(spec.server_id)
    assert {p.name for p in guest.iterdir()} >= {"disk.qcow2", "config.iso", "spec.json"}
    assert msgspec.json.decode((guest / "spec.json").read_bytes(), type=GuestSpec) == spec


async def test_spawn_again_is_a_no_op_and_destroy_leaves_nothing_twice(driver: LibvirtDriver):
    spec = _spec()
    await driver.spawn(spec)
    await asyncio.gather(driver.spawn(spec), driver.spawn(spec))  # redelivered, concurrently
    assert (await driver.list_instances()).count(spec.server_id) == 1
    await driver.destroy(spec.server_id)
    await driver.destroy(spec.server_id)
    assert await driver.get_info(spec.server_id) is None
    assert spec.server_id not in await driver.list_instances()
    assert not driver.guest_dir(spec.server_id).exists()


async def test_a_failed_spawn_leaves_nothing_and_says_why_in_its_own_words(driver: LibvirtDriver):
    no_bits = msgspec.structs.replace(_spec(), image=ImageSpec(id=uuid.uuid4(), name="empty"))
    with pytest.raises(DriverError, match="no data"):
        await driver.spawn(no_bits)
    assert await driver.get_info(no_bits.server_id) is None
    assert not driver.guest_dir(no_bits.server_id).exists()
    # Refused by libvirt itself (no memory): its words stay in the log.
    tiny = msgspec.structs.replace(_spec(), flavor=msgspec.structs.replace(FLAVOR, ram_mb=0))
    with pytest.raises(DriverError) as caught:
        await driver.spawn(tiny)
    assert str(caught.value) == "The hypervisor could not define the server."
    assert await driver.get_info(tiny.server_id) is None
    assert not driver.guest_dir(tiny.server_id).exists()


async def test_unknown_guests_are_guest_not_found(driver: LibvirtDriver):
    sid = uuid.uuid4()
    assert await driver.get_info(sid) is None
    assert await driver.vnc_endpoint(sid) is None
    for call in (driver.console_output(sid), driver.power_on(sid),
                 driver.power_off(sid, timeout_s=0), driver.reboot(sid, hard=True),
                 driver.rescue(sid, admin_pass="x", image=None), driver.unrescue(sid),
                 driver.snapshot(sid, uuid.uuid4())):
        with pytest.raises(GuestNotFound):
            await call


async def test_power_off_and_on_are_idempotent(driver: LibvirtDriver):
    spec = _spec()
    await driver.spawn(spec)
    await driver.power_off(spec.server_id, timeout_s=5)
    assert await _state(driver, spec) is PowerState.SHUTDOWN
    await driver.power_off(spec.server_id, timeout_s=5)
    assert await driver.vnc_endpoint(spec.server_id) is None
    await driver.power_on(spec.server_id)
    await driver.power_on(spec.server_id)
    assert await _state(driver, spec) is PowerState.RUNNING
    await driver.power_off(spec.server_id, timeout_s=0)  # at once: destroy
    assert await _state(driver, spec) is PowerState.SHUTDOWN


async def test_reboots_end_running_and_start_a_stopped_guest(driver: LibvirtDriver):
    spec = _spec()
    await driver.spawn(spec)
    await driver.reboot(spec.server_id, hard=False)
    assert await _state(driver, spec) is PowerState.RUNNING
    await driver.power_off(spec.server_id, timeout_s=0)
    await driver.reboot(spec.server_id, hard=False)  # not running: falls back to hard
    assert await _state(driver, spec) is PowerState.RUNNING
    await driver.reboot(spec.server_id, hard=True)
    assert await _state(driver, spec) is PowerState.RUNNING


async def test_rescue_and_unrescue_swap_definitions_and_are_idempotent(driver: LibvirtDriver):
    spec = _spec()
    await driver.spawn(spec)
    guest = driver.guest_dir(spec.server_id)
    await driver.rescue(spec.server_id, admin_pass="s3cret", image=None)
    await driver.rescue(spec.server_id, admin_pass="s3cret", image=None)
    info = await driver.get_info(spec.server_id)
    assert info is not None and info.rescued and info.power_state is PowerState.RUNNING
    assert {"rescue.qcow2", "rescue-config.iso", "original.xml"} <= {
        p.name for p in guest.iterdir()}
    assert b"s3cret" in (guest / "rescue-config.iso").read_bytes()
    await driver.unrescue(spec.server_id)
    await driver.unrescue(spec.server_id)
    info = await driver.get_info(spec.server_id)
    assert info is not None and not info.rescued and info.power_state is PowerState.RUNNING
    assert not (guest / "rescue.qcow2").exists() and not (guest / "original.xml").exists()


async def test_rebuild_keeps_user_data_and_creates_an_unknown_guest(driver: LibvirtDriver):
    spec = _spec()
    await driver.spawn(spec)
    image = ImageSpec(id=uuid.uuid4(), name="tiny2", location="tiny.qcow2", disk_format="qcow2")
    new = msgspec.structs.replace(spec, image=image, name="vm2",
                                  config=GuestConfig(hostname="vm2", config_drive=True))
    await driver.rebuild(new)
    assert await _state(driver, spec) is PowerState.RUNNING
    kept = msgspec.json.decode((driver.guest_dir(spec.server_id) / "spec.json").read_bytes(),
                               type=GuestSpec)
    assert kept.image.id == image.id and kept.config.user_data == b"#!/bin/sh\n"
    unknown = _spec()
    await driver.rebuild(unknown)
    assert await _state(driver, unknown) is PowerState.RUNNING


async def test_snapshot_writes_the_store_and_leaves_the_guest_running(driver: LibvirtDriver):
    spec = _spec()
    await driver.spawn(spec)
    image_id = uuid.uuid4()
    written = await driver.snapshot(spec.server_id, image_id)
    assert written.location == f"{image_id}.qcow2" and written.disk_format == "qcow2"
    assert driver._store.exists(written.location)
    assert await _state(driver, spec) is PowerState.RUNNING


async def test_console_output_is_the_log_bounded_to_its_last_mebibyte(driver: LibvirtDriver):
    spec = _spec()
    await driver.spawn(spec)
    assert await driver.console_output(spec.server_id) == ""
    log = driver.guest_dir(spec.server_id) / "console.log"
    log.write_bytes(b"x" * (2 * 1024 * 1024) + b"login: ")
    text = await driver.console_output(spec.server_id)
    assert len(text) == 1024 * 1024 and text.endswith("login: ")


async def test_host_resources_come_from_the_hypervisor(driver: LibvirtDriver):
    res = await driver.host_resources()
    assert res.ram_mb > 0 and res.vcpus > 0 and res.disk_gb > 0


async def test_lifecycle_events_wake_a_waiter_before_its_poll(driver: LibvirtDriver):
    spec = _spec()
    await driver.spawn(spec)
    conn: Connection = driver._conn
    conn.poll_s = 60.0  # only an event can end the wait in time
    started = time.monotonic()
    waiting = asyncio.create_task(conn.wait_for(
        spec.server_id, lambda: driver._is_off(spec.server_id), timeout_s=30))
    await asyncio.sleep(0)
    await conn.call(lambda c: c.lookupByUUIDString(str(spec.server_id)).destroy(), "stop")
    assert await waiting
    assert time.monotonic() - started < 10


def test_state_mapping():
    assert power_state(libvirt.VIR_DOMAIN_RUNNING, 0) is PowerState.RUNNING
    assert power_state(libvirt.VIR_DOMAIN_PAUSED, 0) is PowerState.PAUSED
    assert power_state(libvirt.VIR_DOMAIN_SHUTOFF,
                       libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN) is PowerState.SHUTDOWN
    assert power_state(libvirt.VIR_DOMAIN_SHUTOFF,
                       libvirt.VIR_DOMAIN_SHUTOFF_CRASHED) is PowerState.CRASHED
    assert power_state(libvirt.VIR_DOMAIN_CRASHED, 0) is PowerState.CRASHED
    assert power_state(libvirt.VIR_DOMAIN_PMSUSPENDED, 0) is PowerState.SUSPENDED


async def test_libvirt_errors_become_typed_errors_without_libvirt_words(driver: LibvirtDriver):
    conn: Connection = driver._conn
    with pytest.raises(GuestNotFound):
        await conn.call(lambda c: c.lookupByName("nimbus-nothing"), "find the server")
    # The test driver's own domain 'test' runs: starting it again is refused.
    with pytest.raises(DriverError) as caught:
        await conn.call(lambda c: c.lookupByName("test").create(), "start the server")
    assert type(caught.value) is DriverError
    assert str(caught.value) == "The hypervisor could not start the server."


async def test_an_unreachable_hypervisor_is_retryable(tmp_path: Path):
    conn = Connection(f"qemu+unix:///system?socket={tmp_path}/no-such.sock")
    with pytest.raises(HypervisorUnavailable) as caught:
        await conn.open()
    assert caught.value.retryable and "sock" not in str(caught.value)
    await conn.close()


def test_translate_maps_connection_errors():
    err = libvirt.libvirtError("x")
    err.err = (libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_FROM_NONE, "invalid connection",
               2, "", None, None, 0, 0)
    assert isinstance(translate(err, "do it"), HypervisorUnavailable)


async def test_init_host_refuses_a_hypervisor_it_cannot_open(tmp_path: Path):
    ctx = DriverContext(host="h1", image_store=ImageStore(str(tmp_path)))
    d = LibvirtDriver.from_settings(LibvirtSettings(uri="nosuchdriver:///x",
                                                    state_dir=str(tmp_path)), ctx)
    with pytest.raises(DriverError, match="could not open"):
        await d.init_host()
    await d.cleanup()


async def test_a_lost_connection_is_unavailable_once_then_reopened(driver: LibvirtDriver):
    conn: Connection = driver._conn
    spec = _spec()
    await driver.spawn(spec)
    await conn.call(lambda c: c.close(), "close behind the driver's back")
    with pytest.raises(HypervisorUnavailable):
        await driver.get_info(spec.server_id)
    # The next call opens a new connection (the test driver's state lives on while
    # any connection is open: the fixture's other users keep it).
    assert isinstance(await driver.list_instances(), list)


async def test_spawn_completes_a_guest_defined_by_an_interrupted_spawn(driver: LibvirtDriver):
    spec = _spec()
    await driver.spawn(spec)
    await driver.power_off(spec.server_id, timeout_s=0)  # as if killed before it started
    await driver.spawn(spec)
    assert await _state(driver, spec) is PowerState.RUNNING
