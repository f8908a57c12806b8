"""The fake host keeps its guests across an agent restart, as a real hypervisor does,
and its state can change under a running agent. A restart is a new FakeDriver on
the same state directory (or a real process killed with SIGKILL)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from services.compute_agent.drivers import DriverError, GuestSpec
from services.compute_agent.drivers.fake import FakeDriver, FakeSettings
from shared.contracts.common import FlavorSpec, ImageSpec, Port
from shared.image_store import ImageStore
from shared.states import PowerState
from tests.unit.compute_agent.guests import guest_spec, replace_spec

HOST = "fake-1"
FLAVOR = FlavorSpec(id="100", name="standard.xsmall", ram_mb=1024, disk_gb=10, vcpus=1)
IMAGE = ImageSpec(id=uuid.uuid4(), name="cirros", size_bytes=13147648)
DEBIAN = ImageSpec(id=uuid.uuid4(), name="debian")
REPO = Path(__file__).resolve().parents[3]


def _spec(**kw) -> GuestSpec:
    port = Port(id=uuid.uuid4(), network_id=uuid.uuid4(), network_name="private",
                address="10.0.0.5", mac="fa:16:3e:00:00:05")
    fields = {"server_id": uuid.uuid4(), "name": "vm", "flavor": FLAVOR, "image": IMAGE,
              "ports": (port,), **kw}
    return guest_spec(**fields)


def _driver(state_dir: Path | None, **kw) -> FakeDriver:
    delays = {name: 0.0 for name in ("spawn_delay_s", "destroy_delay_s", "reboot_delay_s",
                                     "power_off_delay_s", "power_on_delay_s", "rescue_delay_s",
                                     "snapshot_delay_s")}
    settings = FakeSettings(**{**delays, "state_dir": str(state_dir or ""), **kw})
    return FakeDriver(settings, host=HOST, image_store=ImageStore(str(
        (state_dir or Path(tempfile.mkdtemp(prefix="nimbus-"))) / "images")))


async def _power(driver: FakeDriver, spec: GuestSpec) -> PowerState | None:
    info = await driver.get_info(spec.server_id)
    return None if info is None else info.power_state


async def _boots(driver: FakeDriver, spec: GuestSpec) -> int:
    return (await driver.console_output(spec.server_id)).count("Booting the kernel.")


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for ``check`` to hold (a condition, never a fixed time)."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


async def test_a_restarted_driver_finds_its_guests_as_they_were(tmp_path: Path):
    before = _driver(tmp_path)
    running, stopped, rescued = _spec(name="web"), _spec(name="db"), _spec(name="broken")
    for spec in (running, stopped, rescued):
        await before.spawn(spec)
    await before.power_off(stopped.server_id, timeout_s=60)
    await before.rescue(rescued.server_id, admin_pass="pw", image=None)
    consoles = {s.server_id: await before.console_output(s.server_id)
                for s in (running, stopped, rescued)}

    after = _driver(tmp_path)
    assert sorted(await after.list_instances()) == sorted(consoles)
    assert await _power(after, running) is PowerState.RUNNING
    assert await _power(after, stopped) is PowerState.SHUTDOWN
    info = await after.get_info(rescued.server_id)
    assert info is not None and info.rescued and info.power_state is PowerState.RUNNING
    assert info.ram_mb == FLAVOR.ram_mb and info.vcpus == FLAVOR.vcpus
    for sid, console in consoles.items():
        assert await after.console_output(sid) == console

    # Each operation's idempotency holds across the restart: nothing happens...
    await after.spawn(running)
    await after.power_off(stopped.server_id, timeout_s=60)
    await after.power_on(running.server_id)
    await after.rescue(rescued.server_id, admin_pass="again", image=None)
    for sid, console in consoles.items():
        assert await after.console_output(sid) == console
    # ... and the rest works on the guests found.
    await after.unrescue(rescued.server_id)
    await after.power_on(stopped.server_id)
    assert not (await after.get_info(rescued.server_id)).rescued
    assert await _power(after, stopped) is PowerState.RUNNING and await _boots(after, stopped) == 2
    await after.destroy(running.server_id)
    assert await after.get_info(running.server_id) is None
    assert not (tmp_path / HOST / str(running.server_id)).exists()  # its disk went too
    await after.destroy(running.server_id)  # still quiet

    # Without a state directory the guests live in the agent and die with it.
    memory = _driver(None)
    await memory.spawn(_spec())
    assert await _driver(None).list_instances() == []


async def test_a_guest_caught_mid_spawn_is_booted_by_spawning_it_again(tmp_path: Path):
    spec = _spec(admin_pass="pw")
    # What a spawn writes before its boot delay, as the agent that died left it.
    _driver(tmp_path).fake_host.define(spec, lines=["nimbus-fake: creating guest vm"])
    after = _driver(tmp_path)
    assert await _power(after, spec) is PowerState.NOSTATE
    await after.spawn(spec)
    assert await _power(after, spec) is PowerState.RUNNING
    console = await after.console_output(spec.server_id)
    assert "found half-created: booting it again" in console and await _boots(after, spec) == 1
    assert (tmp_path / HOST / str(spec.server_id)).is_dir()  # its disk was prepared
    await after.spawn(spec)  # now a no-op
    assert await _boots(after, spec) == 1


_KILLED_AGENT = textwrap.dedent("""
    import asyncio, sys, uuid
    from tests.unit.compute_agent.guests import guest_spec
    from services.compute_agent.drivers.fake import FakeDriver, FakeSettings
    from shared.contracts.common import FlavorSpec, ImageSpec

    async def main(state_dir, *ids):
        flavor = FlavorSpec(id="100", name="x", ram_mb=1024, disk_gb=10, vcpus=1)
        image = ImageSpec(id=uuid.uuid4(), name="cirros")
        quick = FakeDriver(FakeSettings(state_dir=state_dir, spawn_delay_s=0,
                                        power_off_delay_s=0), host="fake-1")
        slow = FakeDriver(FakeSettings(state_dir=state_dir, spawn_delay_s=3600), host="fake-1")
        up, down, booting = (guest_spec(server_id=uuid.UUID(i), name="vm", flavor=flavor,
                                       image=image) for i in ids)
        await quick.spawn(up)
        await quick.spawn(down)
        await quick.power_off(down.server_id, timeout_s=60)
        spawn = asyncio.ensure_future(slow.spawn(booting))
        while slow.fake_host.guest(booting.server_id) is None:  # until the spawn defined it
            await asyncio.sleep(0.001)
        print("booting", flush=True)
        await spawn

    asyncio.run(main(*sys.argv[1:]))
""")


async def test_an_agent_killed_mid_spawn_leaves_its_guests_to_the_next(tmp_path: Path):
    up, down, booting = _spec(), _spec(), _spec()
    agent = subprocess.Popen([sys.executable, "-c", _KILLED_AGENT, str(tmp_path),
                              str(up.server_id), str(down.server_id), str(booting.server_id)],
                             cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        line = await asyncio.to_thread(agent.stdout.readline)
        assert line == "booting\n", line
    finally:
        os.kill(agent.pid, signal.SIGKILL)
        agent.wait(timeout=30)
        agent.stdout.close()
    assert agent.returncode == -signal.SIGKILL

    after = _driver(tmp_path)
    assert await _power(after, up) is PowerState.RUNNING
    assert await _power(after, down) is PowerState.SHUTDOWN
    assert await _power(after, booting) is PowerState.NOSTATE
    await after.spawn(booting)
    assert await _power(after, booting) is PowerState.RUNNING


async def test_capacity_counts_every_guest_on_disk(tmp_path: Path):
    await _driver(tmp_path, ram_mb=3072).spawn(_spec())
    after = _driver(tmp_path, ram_mb=3072)
    orphan = after.fake_host.create(uuid.uuid4(), name="orphan", ram_mb=1024)  # out of band
    await after.spawn(_spec())
    with pytest.raises(DriverError, match="not enough memory"):
        await after.spawn(_spec())
    after.fake_host.destroy(orphan.server_id)
    await after.spawn(_spec())
    assert len(await after.list_instances()) == 3


async def test_what_happens_out_of_band_shows_at_once(tmp_path: Path):
    driver = _driver(tmp_path)
    spec = _spec()
    await driver.spawn(spec)
    host = driver.fake_host  # or another process: see test_fake_host's CLI test
    host.crash(spec.server_id)
    info = await driver.get_info(spec.server_id)
    assert info is not None and info.power_state is PowerState.CRASHED and info.power_state == 6
    assert "Kernel panic - not syncing" in await driver.console_output(spec.server_id)
    assert await driver.vnc_endpoint(spec.server_id) is None
    await driver.power_off(spec.server_id, timeout_s=60)  # a crashed guest is simply switched off
    assert await _power(driver, spec) is PowerState.SHUTDOWN
    console = await driver.console_output(spec.server_id)
    assert "the guest had crashed: powered off" in console and "ACPI" not in console
    host.start(spec.server_id)
    assert await _power(driver, spec) is PowerState.RUNNING
    host.stop(spec.server_id)
    assert await _power(driver, spec) is PowerState.SHUTDOWN
    assert (await driver.console_output(spec.server_id)).rstrip().endswith("reboot: Power down")
    await driver.power_on(spec.server_id)
    assert await _power(driver, spec) is PowerState.RUNNING and await _boots(driver, spec) == 3

    orphan = host.create(uuid.uuid4(), name="orphan")
    assert sorted(await driver.list_instances()) == sorted([spec.server_id, orphan.server_id])
    host.destroy(spec.server_id)
    assert await driver.get_info(spec.server_id) is None
    assert await driver.list_instances() == [orphan.server_id]
    with pytest.raises(DriverError, match="no guest"):
        await driver.console_output(spec.server_id)
    with pytest.raises(DriverError, match="no guest"):
        await driver.power_on(spec.server_id)
    await driver.destroy(spec.server_id)  # quiet


@pytest.mark.parametrize("again", [False, True], ids=["destroyed", "destroyed-and-recreated"])
async def test_a_guest_destroyed_out_of_band_fails_the_operation_in_flight(tmp_path, again):
    driver = _driver(tmp_path, power_off_delay_s=0.2)
    spec = _spec()
    await driver.spawn(spec)
    power_off = asyncio.create_task(driver.power_off(spec.server_id, timeout_s=60))
    # Once the ACPI line is written the power-off waits out its delay; what follows
    # runs without yielding, so it lands within that delay.
    await _until(lambda: "ACPI power button" in driver.fake_host.console(spec.server_id))
    driver.fake_host.destroy(spec.server_id)
    if again:  # the same id, another guest: the power-off must leave it alone
        driver.fake_host.create(spec.server_id, name="newcomer")
    with pytest.raises(DriverError, match="destroyed while powering off"):
        await power_off
    assert await _power(driver, spec) is (PowerState.RUNNING if again else None)


async def test_passwords_never_reach_the_disk(tmp_path: Path):
    driver = _driver(tmp_path)
    spec = _spec(admin_pass="s3cret-boot", user_data=b"#!/bin/sh\n")
    await driver.spawn(spec)
    await driver.rebuild(replace_spec(spec, image=DEBIAN, admin_pass="s3cret-rebuild"))
    await driver.rescue(spec.server_id, admin_pass="s3cret-rescue", image=None)
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"#!/bin/sh" in written  # the check would see a secret if one were there
    assert b"s3cret" not in written


async def test_a_restarted_driver_rebuilds_with_what_the_guest_was_created_with(tmp_path: Path):
    spec = _spec(user_data=b"#!/bin/sh\necho hi\n")
    await _driver(tmp_path).spawn(spec)
    after = _driver(tmp_path)
    await after.rebuild(replace_spec(spec, image=DEBIAN, name="vm2", user_data=None))
    assert (tmp_path / HOST / str(spec.server_id) / "user_data").read_bytes() == \
        b"#!/bin/sh\necho hi\n"
    console = await after.console_output(spec.server_id)
    assert "rebuilding guest vm from image debian (was image cirros)" in console
    assert console.rstrip().endswith("vm2 login:") and await _boots(after, spec) == 2
    size = (await after.snapshot(spec.server_id, uuid.uuid4())).size_bytes
    assert size % 65536 == 0 and size >= len(b"#!/bin/sh\necho hi\n")


async def test_vnc_servers_are_per_process(tmp_path: Path):
    before, spec = _driver(tmp_path), _spec()
    await before.spawn(spec)
    first = await before.vnc_endpoint(spec.server_id)
    after = _driver(tmp_path)
    second = await after.vnc_endpoint(spec.server_id)
    assert second is not None and second != first  # a new server for the new agent
    after.fake_host.destroy(spec.server_id)  # behind the agent's back
    assert await after.vnc_endpoint(spec.server_id) is None
    with pytest.raises(OSError):  # and its server went with the guest
        await asyncio.open_connection(*second)
    await before.destroy(spec.server_id)
