"""The fake driver is a real driver of a simulated host."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from services.compute_agent.drivers import DriverError, GuestSpec
from services.compute_agent.drivers.fake import (
    FakeDriver,
    FakeSettings,
    guest_relative_path,
)
from shared.config import load
from shared.contracts.common import FlavorSpec, ImageSpec, Port
from shared.contracts.compute import InjectedFile
from shared.states import PowerState
from tests.unit.compute_agent.guests import guest_spec, replace_spec

FLAVOR = FlavorSpec(id="100", name="standard.xsmall", ram_mb=1024, disk_gb=10, vcpus=1)
IMAGE = ImageSpec(id=uuid.uuid4(), name="cirros")


def _spec(flavor: FlavorSpec = FLAVOR) -> GuestSpec:
    port = Port(id=uuid.uuid4(), network_id=uuid.uuid4(), network_name="private",
                address="10.0.0.5", mac="fa:16:3e:00:00:05")
    return guest_spec(server_id=uuid.uuid4(), name="vm", flavor=flavor, image=IMAGE, ports=(port,))


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


async def test_a_spawn_of_a_guest_already_spawning_ends_with_the_first():
    driver = FakeDriver(FakeSettings(spawn_delay_s=0.1, destroy_delay_s=0), host="fake-1")
    spec = _spec()
    await asyncio.gather(driver.spawn(spec), driver.spawn(spec))
    info = await driver.get_info(spec.server_id)
    assert info is not None and info.power_state is PowerState.RUNNING  # for both, on return
    assert (await driver.console_output(spec.server_id)).count("Booting the kernel.") == 1

    other = _spec()
    first, second = (asyncio.create_task(driver.spawn(other)) for _ in range(2))
    while await driver.get_info(other.server_id) is None:  # until the first defined it
        await asyncio.sleep(0.005)
    await driver.destroy(other.server_id)
    for spawn in (first, second):
        with pytest.raises(DriverError, match="destroyed while spawning"):
            await spawn


# --------------------------------------------------------------------------- state_dir


def _recording(tmp_path: Path, **kw) -> FakeDriver:
    return FakeDriver(FakeSettings(spawn_delay_s=0.01, destroy_delay_s=0,
                                   state_dir=str(tmp_path), **kw), host="fake-1")


FILES = (InjectedFile(path="/etc/banner.txt", contents=b"hello\n"),
         InjectedFile(path="/root/.ssh/authorized_keys", contents=b"\x00\xffbinary"))


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


async def test_without_state_dir_nothing_is_written(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    driver = _driver()
    spec = replace_spec(_spec(), files=FILES, user_data=b"#!/bin/sh\n")
    await driver.spawn(spec)
    assert driver.guest_dir(spec.server_id) is None
    assert list(tmp_path.iterdir()) == []


async def test_files_and_user_data_are_recorded_without_a_config_drive(tmp_path: Path) -> None:
    driver = _recording(tmp_path)
    spec = replace_spec(_spec(), files=FILES, user_data=b"#!/bin/sh\necho hi\n",
                           metadata={"role": "web"})
    await driver.spawn(spec)
    guest = tmp_path / "fake-1" / str(spec.server_id)
    assert driver.guest_dir(spec.server_id) == guest
    assert _tree(guest) == {
        "user_data": b"#!/bin/sh\necho hi\n",
        "files/etc/banner.txt": b"hello\n",
        "files/root/.ssh/authorized_keys": b"\x00\xffbinary",
    }
    assert "injecting 2 file(s)" in await driver.console_output(spec.server_id)


async def test_config_drive_takes_metadata_files_key_and_user_data(tmp_path: Path) -> None:
    driver = _recording(tmp_path)
    spec = replace_spec(_spec(), files=FILES, user_data=b"ud",
                        metadata={"My Server Name": "Apache1", "id": "25"},
                        public_keys={"demo": "ssh-rsa AAAA demo@nimbus"}, config_drive=True)
    await driver.spawn(spec)
    tree = _tree(tmp_path / "fake-1" / str(spec.server_id))
    assert json.loads(tree.pop("config_drive/meta.js")) == {"My Server Name": "Apache1", "id": "25"}
    assert tree == {
        "user_data": b"ud",
        "config_drive/files/etc/banner.txt": b"hello\n",
        "config_drive/files/root/.ssh/authorized_keys": b"\x00\xffbinary",
        "config_drive/public_key": b"ssh-rsa AAAA demo@nimbus",
        "config_drive/user_data": b"ud",
    }


async def test_destroy_removes_the_record(tmp_path: Path) -> None:
    driver = _recording(tmp_path)
    spec = replace_spec(_spec(), files=FILES)
    await driver.spawn(spec)
    guest = tmp_path / "fake-1" / str(spec.server_id)
    assert guest.is_dir()
    await driver.destroy(spec.server_id)
    assert not guest.exists()
    await driver.destroy(spec.server_id)  # still quiet


async def test_destroy_while_spawning_leaves_no_record(tmp_path: Path) -> None:
    driver = FakeDriver(FakeSettings(spawn_delay_s=0.2, destroy_delay_s=0, state_dir=str(tmp_path)),
                        host="fake-1")
    spec = replace_spec(_spec(), files=FILES)
    spawn = asyncio.create_task(driver.spawn(spec))
    guest = tmp_path / "fake-1" / str(spec.server_id)
    for _ in range(100):
        if guest.exists():
            break
        await asyncio.sleep(0.01)
    await driver.destroy(spec.server_id)
    with pytest.raises(DriverError):
        await spawn
    assert not guest.exists()
    assert await driver.list_instances() == []


@pytest.mark.parametrize(("given", "inside"), [
    ("/etc/banner.txt", "etc/banner.txt"),
    ("etc/banner.txt", "etc/banner.txt"),
    ("../../etc/x", "etc/x"),
    ("/a/../../../b", "b"),
    ("//a/./b//c", "a/b/c"),
])
def test_injected_paths_stay_inside_the_guest(given: str, inside: str) -> None:
    assert guest_relative_path(given) == inside


@pytest.mark.parametrize("bad", ["/", "..", "/../..", "a\x00b"])
def test_paths_that_name_no_file_are_refused(bad: str) -> None:
    with pytest.raises(DriverError):
        guest_relative_path(bad)


async def test_climbing_paths_are_written_inside_the_guest(tmp_path: Path) -> None:
    driver = _recording(tmp_path / "state")
    spec = replace_spec(_spec(), files=(InjectedFile(path="../../../escape", contents=b"x"),))
    await driver.spawn(spec)
    guest = tmp_path / "state" / "fake-1" / str(spec.server_id)
    # Apart from the host's own record of its guests (domains/), only the guest's disk.
    written = {p: data for p, data in _tree(tmp_path).items()
               if not p.startswith("state/fake-1/domains/")}
    assert written == {str((guest / "files" / "escape").relative_to(tmp_path)): b"x"}


async def test_a_bad_path_fails_the_spawn_and_leaves_nothing(tmp_path: Path) -> None:
    driver = _recording(tmp_path)
    spec = replace_spec(_spec(), files=(InjectedFile(path="/etc/a", contents=b"1"),
                                           InjectedFile(path="/etc/a/b", contents=b"2")))
    with pytest.raises(DriverError, match="/etc/a/b"):
        await driver.spawn(spec)
    assert not (tmp_path / "fake-1" / str(spec.server_id)).exists()
    assert await driver.list_instances() == []


def test_state_dir_comes_from_the_environment(monkeypatch, tmp_path: Path) -> None:
    from services.compute_agent.settings import Settings

    monkeypatch.delenv("NIMBUS_CONFIG", raising=False)
    monkeypatch.setenv("NIMBUS_FAKE_STATE_DIR", str(tmp_path))
    assert load(Settings).fake.state_dir == str(tmp_path)
    monkeypatch.delenv("NIMBUS_FAKE_STATE_DIR")
    assert load(Settings).fake.state_dir == ""
