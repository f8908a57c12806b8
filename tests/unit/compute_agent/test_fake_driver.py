"""The fake driver is a real driver of a simulated host."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.compute_agent.drivers import DriverError, GuestSpec
from services.compute_agent.drivers.fake import FakeDriver, FakeSettings
from shared.contracts.common import FlavorSpec, ImageSpec, Port
from shared.states import PowerState

FLAVOR = FlavorSpec(id="100", name="standard.xsmall", ram_mb=1024, disk_gb=10, vcpus=1)
IMAGE = ImageSpec(id=uuid.uuid4(), name="cirros")


def _spec(flavor: FlavorSpec = FLAVOR) -> GuestSpec:
    port = Port(id=uuid.uuid4(), network_id=uuid.uuid4(), network_name="private",
                address="10.0.0.5", mac="fa:16:3e:00:00:05")
    return GuestSpec(server_id=uuid.uuid4(), name="vm", flavor=flavor, image=IMAGE, ports=(port,))


def _driver(ram_mb: int = 4096) -> FakeDriver:
    return FakeDriver(FakeSettings(ram_mb=ram_mb, spawn_delay_s=0.01, destroy_delay_s=0),
                      host="fake-1")


async def test_spawn_runs_the_guest_and_logs_its_boot():
    driver, spec = _driver(), _spec()
    await driver.spawn(spec)
    info = await driver.get_info(spec.server_id)
    assert info is not None and info.power_state is PowerState.RUNNING and info.ram_mb == 1024
    assert await driver.list_instances() == [spec.server_id]
    console = await driver.console_output(spec.server_id)
    assert "Booting the kernel." in console and "10.0.0.5" in console


async def test_spawn_twice_is_a_no_op_and_destroy_is_quiet_when_gone():
    driver, spec = _driver(), _spec()
    await driver.spawn(spec)
    await driver.spawn(spec)
    assert len(await driver.list_instances()) == 1
    await driver.destroy(spec.server_id)
    await driver.destroy(spec.server_id)
    assert await driver.get_info(spec.server_id) is None
    with pytest.raises(DriverError):
        await driver.console_output(spec.server_id)


async def test_host_refuses_a_guest_that_does_not_fit():
    driver = _driver(ram_mb=2048)
    await driver.spawn(_spec())
    await driver.spawn(_spec())
    with pytest.raises(DriverError, match="not enough memory"):
        await driver.spawn(_spec())
    assert len(await driver.list_instances()) == 2


async def test_destroy_while_spawning_leaves_nothing():
    driver = FakeDriver(FakeSettings(spawn_delay_s=0.2, destroy_delay_s=0), host="fake-1")
    spec = _spec()
    spawn = asyncio.create_task(driver.spawn(spec))
    await asyncio.sleep(0.05)
    await driver.destroy(spec.server_id)
    with pytest.raises(DriverError):
        await spawn
    assert await driver.list_instances() == []
