"""The fake driver's reboot, power off/on, rescue and unrescue: the guest really
goes down and comes up again, and its console log tells so."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.compute_agent.drivers import DriverError, GuestSpec
from services.compute_agent.drivers.fake import FakeDriver, FakeSettings
from shared.contracts.common import FlavorSpec, ImageSpec, Port
from shared.states import PowerState
from tests.unit.compute_agent.guests import guest_spec

FLAVOR = FlavorSpec(id="100", name="standard.xsmall", ram_mb=1024, disk_gb=10, vcpus=1)
IMAGE = ImageSpec(id=uuid.uuid4(), name="cirros")
RESCUE_IMAGE = ImageSpec(id=uuid.uuid4(), name="rescue-linux")
DELAY = 0.2


def _spec() -> GuestSpec:
    port = Port(id=uuid.uuid4(), network_id=uuid.uuid4(), network_name="private",
                address="10.0.0.7", mac="fa:16:3e:00:00:07")
    return guest_spec(server_id=uuid.uuid4(), name="vm", flavor=FLAVOR, image=IMAGE, ports=(port,))


async def _running(delay: float = DELAY) -> tuple[FakeDriver, GuestSpec]:
    driver = FakeDriver(FakeSettings(spawn_delay_s=0.01, destroy_delay_s=0, reboot_delay_s=delay,
                                     power_off_delay_s=delay, power_on_delay_s=delay,
                                     rescue_delay_s=delay), host="fake-1")
    spec = _spec()
    await driver.spawn(spec)
    return driver, spec


async def _power(driver: FakeDriver, spec: GuestSpec) -> PowerState:
    info = await driver.get_info(spec.server_id)
    assert info is not None
    return info.power_state


async def _power_states_during(driver: FakeDriver, spec: GuestSpec, op) -> list[PowerState]:
    """Every power state seen (in order, repeats dropped) while ``op`` runs, and after."""
    task = asyncio.create_task(op)
    seen: list[PowerState] = []
    while True:
        state = await _power(driver, spec)
        if not seen or seen[-1] != state:
            seen.append(state)
        if task.done():
            break
        await asyncio.sleep(0.005)
    await task
    state = await _power(driver, spec)
    if seen[-1] != state:
        seen.append(state)
    return seen


def _boots(console: str) -> int:
    return console.count("Booting the kernel.")


@pytest.mark.parametrize("hard", [False, True])
async def test_reboot_goes_down_and_boots_again(hard):
    driver, spec = await _running()
    before = await driver.console_output(spec.server_id)
    seen = await _power_states_during(driver, spec, driver.reboot(spec.server_id, hard=hard))
    assert seen == [PowerState.RUNNING, PowerState.SHUTDOWN, PowerState.RUNNING]
    console = await driver.console_output(spec.server_id)
    assert console.startswith(before)
    new = console[len(before):]
    assert _boots(before) == 1 and _boots(new) == 1
    # The new boot comes after the shutdown, with the addresses and the login prompt again.
    assert new.index("Booting the kernel.") < new.index("10.0.0.7") < new.index("vm login:")
    if hard:
        assert "hard reboot" in new and "going down" not in new
    else:
        assert new.index("soft reboot") < new.index("The system is going down for reboot NOW!") \
            < new.index("reboot: Restarting system") < new.index("Booting the kernel.")


async def test_soft_reboot_of_a_stopped_guest_is_a_hard_one():
    driver, spec = await _running(delay=0.01)
    await driver.power_off(spec.server_id, timeout_s=60)
    await driver.reboot(spec.server_id, hard=False)
    assert await _power(driver, spec) is PowerState.RUNNING
    assert "soft reboot falls back to hard" in await driver.console_output(spec.server_id)


async def test_power_off_then_on():
    driver, spec = await _running()
    seen = await _power_states_during(driver, spec, driver.power_off(spec.server_id, timeout_s=60))
    assert seen == [PowerState.RUNNING, PowerState.SHUTDOWN]
    console = await driver.console_output(spec.server_id)
    assert console.rstrip().endswith("reboot: Power down")
    assert "The system is going down for power off NOW!" in console

    seen = await _power_states_during(driver, spec, driver.power_on(spec.server_id))
    assert seen == [PowerState.SHUTDOWN, PowerState.RUNNING]
    console = await driver.console_output(spec.server_id)
    assert _boots(console) == 2 and console.rstrip().endswith("vm login:")


async def test_power_off_and_on_are_idempotent():
    driver, spec = await _running(delay=0.01)
    await driver.power_on(spec.server_id)  # already running: nothing happens
    assert _boots(await driver.console_output(spec.server_id)) == 1
    await driver.power_off(spec.server_id, timeout_s=60)
    lines = len((await driver.console_output(spec.server_id)).splitlines())
    await driver.power_off(spec.server_id, timeout_s=60)
    assert len((await driver.console_output(spec.server_id)).splitlines()) == lines
    assert await _power(driver, spec) is PowerState.SHUTDOWN


async def test_rescue_boots_the_rescue_image_and_unrescue_the_guest_disk():
    driver, spec = await _running()
    seen = await _power_states_during(driver, spec, driver.rescue(
        spec.server_id, admin_pass="s3cret-rescue", image=RESCUE_IMAGE))
    assert seen == [PowerState.RUNNING, PowerState.SHUTDOWN, PowerState.RUNNING]
    info = await driver.get_info(spec.server_id)
    assert info is not None and info.rescued
    console = await driver.console_output(spec.server_id)
    assert "booting rescue-linux" in console and _boots(console) == 2
    assert "s3cret-rescue" not in console  # the password never reaches the log

    await driver.rescue(spec.server_id, admin_pass="again", image=None)  # idempotent
    assert _boots(await driver.console_output(spec.server_id)) == 2

    seen = await _power_states_during(driver, spec, driver.unrescue(spec.server_id))
    assert seen == [PowerState.RUNNING, PowerState.SHUTDOWN, PowerState.RUNNING]
    info = await driver.get_info(spec.server_id)
    assert info is not None and not info.rescued
    console = await driver.console_output(spec.server_id)
    assert "booting from the guest's own disk" in console and _boots(console) == 3
    await driver.unrescue(spec.server_id)  # idempotent
    assert _boots(await driver.console_output(spec.server_id)) == 3


async def test_rescue_without_an_image_names_the_default_one():
    driver, spec = await _running(delay=0.01)
    await driver.rescue(spec.server_id, admin_pass="x", image=None)
    assert "default rescue image" in await driver.console_output(spec.server_id)


async def test_actions_on_an_unknown_guest_fail():
    driver, _ = await _running(delay=0.01)
    missing = uuid.uuid4()
    for op in (driver.reboot(missing, hard=True), driver.reboot(missing, hard=False),
               driver.power_off(missing, timeout_s=60), driver.power_on(missing),
               driver.rescue(missing, admin_pass="x", image=None), driver.unrescue(missing)):
        with pytest.raises(DriverError, match="no guest"):
            await op


async def test_a_guest_destroyed_while_rebooting_makes_the_reboot_fail():
    driver, spec = await _running(delay=0.2)
    reboot = asyncio.create_task(driver.reboot(spec.server_id, hard=True))
    await asyncio.sleep(0.05)
    await driver.destroy(spec.server_id)
    with pytest.raises(DriverError, match="destroyed while rebooting"):
        await reboot
    assert await driver.get_info(spec.server_id) is None
