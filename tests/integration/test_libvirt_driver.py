"""The libvirt driver boots real QEMU guests (TCG) through libvirt's embedded driver.

Real libvirt (``qemu:///embed`` in a temporary directory), real QEMU, the
project's own guest image (``deploy.guest_image``, built once into
``.run/images``). Every wait is for a condition with a deadline; nothing sleeps
to synchronise.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import pytest

from services.compute_agent.drivers.base import GuestConfig, GuestSpec
from services.compute_agent.drivers.libvirt.driver import LibvirtDriver
from shared.states import PowerState
from tests.integration.libvirt_guests import (
    REPO,
    console_end,
    console_has,
    console_line,
    context_for,
    guest_spec,
    kill_guests,
    make_home,
    power,
    qemu_pids,
    settings_for,
    until,
)


@pytest.fixture
def other_home(tiny_image: Path) -> Iterator[Path]:
    """A root for agents run as child processes (never opened by this process)."""
    path = make_home(tiny_image)
    yield path
    kill_guests(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def driver(libvirt_home: Path) -> AsyncIterator[LibvirtDriver]:
    d = LibvirtDriver.from_settings(settings_for(libvirt_home), context_for(libvirt_home))
    await d.init_host()
    yield d
    await d.cleanup()


async def test_a_guest_boots_stops_reboots_is_rescued_snapshotted_and_destroyed(
        driver: LibvirtDriver, libvirt_home: Path, capsys: pytest.CaptureFixture[str]):
    spec = guest_spec()
    sid = spec.server_id
    timings: dict[str, float] = {}

    started = time.monotonic()
    await driver.spawn(spec)
    timings["spawn (to RUNNING)"] = time.monotonic() - started
    assert await power(driver, sid) is PowerState.RUNNING
    assert sid in await driver.list_instances()
    assert len(qemu_pids(sid)) == 1
    await driver.spawn(spec)  # redelivered: no-op
    assert len(qemu_pids(sid)) == 1

    timings["boot (spawn to ready)"] = await console_has(driver, sid, "ready") + \
        timings["spawn (to RUNNING)"]
    console = await driver.console_output(sid)
    assert "SeaBIOS" in console
    for line in ("hostname=tiny-host", f"uuid={sid}", "user-data: hello from nimbus",
                 "disk boot 1, first booted by .*"):
        assert console_line(line).search(console), line

    host, port = await driver.vnc_endpoint(sid) or ("", 0)
    assert host == "127.0.0.1" and port >= 5900
    reader, writer = await asyncio.open_connection(host, port)
    assert (await asyncio.wait_for(reader.readexactly(4), 10)) == b"RFB "
    writer.close()

    # Clean stop: the ACPI button, the guest powers itself off, QEMU goes.
    started = time.monotonic()
    await driver.power_off(sid, timeout_s=120)
    timings["power_off (clean)"] = time.monotonic() - started
    assert await power(driver, sid) is PowerState.SHUTDOWN
    assert console_line("power button: shutting down").search(await driver.console_output(sid))
    assert qemu_pids(sid) == []
    assert await driver.vnc_endpoint(sid) is None

    mark = await console_end(driver, sid)
    await driver.power_on(sid)
    await console_has(driver, sid, "disk boot 2, first booted by .*", since=mark)
    mark = await console_end(driver, sid)
    await driver.reboot(sid, hard=True)
    await console_has(driver, sid, "disk boot 3, first booted by .*", since=mark)
    await console_has(driver, sid, "ready", since=mark)  # the power button is heard now
    mark = await console_end(driver, sid)
    started = time.monotonic()
    await driver.reboot(sid, hard=False)
    timings["reboot (soft)"] = time.monotonic() - started
    assert console_line("power button: shutting down").search(
        (await driver.console_output(sid))[mark:])  # it was clean
    await console_has(driver, sid, "disk boot 4, first booted by .*", since=mark)

    mark = await console_end(driver, sid)
    await driver.rescue(sid, admin_pass="rescue-pw", image=None)
    info = await driver.get_info(sid)
    assert info is not None and info.rescued and info.power_state is PowerState.RUNNING
    await console_has(driver, sid, r"rescue: found the server's disk on vdb \(boot 4, .*",
                       since=mark)
    await driver.rescue(sid, admin_pass="rescue-pw", image=None)  # again: no-op
    mark = await console_end(driver, sid)
    await driver.unrescue(sid)
    info = await driver.get_info(sid)
    assert info is not None and not info.rescued
    await console_has(driver, sid, "disk boot 5, first booted by .*", since=mark)

    image_id = uuid.uuid4()
    written = await driver.snapshot(sid, image_id)
    path = libvirt_home / "images" / written.location
    info_run = await asyncio.to_thread(subprocess.run, ["qemu-img", "info", "--output=json",
                                                       str(path)], check=True,
                                       capture_output=True)
    described = json.loads(info_run.stdout)
    assert described["format"] == "qcow2" and "backing-filename" not in described
    assert written.size_bytes == path.stat().st_size > 0
    assert await power(driver, sid) is PowerState.RUNNING

    # Rebuild: a new disk from the image (the boot count starts again), a new
    # config drive with the new hostname, the user data kept.
    mark = await console_end(driver, sid)
    await driver.rebuild(msgspec.structs.replace(spec, config=GuestConfig(
        hostname="rebuilt", config_drive=True)))
    for line in ("hostname=rebuilt", "user-data: hello from nimbus",
                 "disk boot 1, first booted by .*", "ready"):
        await console_has(driver, sid, line, since=mark)

    # QEMU killed under the guest: libvirt sees it go.
    (pid,) = qemu_pids(sid)
    os.kill(pid, signal.SIGKILL)
    await until("seen crashed", lambda: _crashed(driver, sid), 60)
    await driver.power_off(sid, timeout_s=5)  # the stop the agent then makes
    assert await power(driver, sid) is PowerState.SHUTDOWN and qemu_pids(sid) == []

    await driver.destroy(sid)
    await driver.destroy(sid)
    assert await driver.get_info(sid) is None and sid not in await driver.list_instances()
    assert qemu_pids(sid) == [] and not driver.guest_dir(sid).exists()
    with capsys.disabled():
        print("\nlibvirt driver timings (s): "
              + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))


async def _crashed(d: LibvirtDriver, sid: uuid.UUID) -> bool:
    return await power(d, sid) is PowerState.CRASHED


AGENT = """
import asyncio, json, os, sys, msgspec
from services.compute_agent.drivers.base import DriverContext, GuestSpec
from services.compute_agent.drivers.libvirt.driver import LibvirtDriver
from services.compute_agent.drivers.libvirt.settings import LibvirtSettings
from shared.image_store import ImageStore
async def main():
    step, settings, home, spec = sys.argv[1:5]
    spec = msgspec.json.decode(spec, type=GuestSpec)
    d = LibvirtDriver.from_settings(msgspec.json.decode(settings, type=LibvirtSettings),
        DriverContext(host="itest", image_store=ImageStore(home + "/images")))
    await d.init_host()
    if step == "spawn":
        await d.spawn(spec)
        print(json.dumps({"spawned": True}), flush=True)
        os.kill(os.getpid(), 9)  # the agent dies without cleaning up
    info = await d.get_info(spec.server_id)
    await d.spawn(spec)  # the redelivered spawn finds it running
    await d.cleanup()  # a clean stop: the guest keeps running
    print(json.dumps({"stopped": True}), flush=True)
    input()  # the test looks at the guest meanwhile
    await d.init_host()  # the same agent process opens the same root again
    after = await d.get_info(spec.server_id)
    await d.destroy(spec.server_id)
    print(json.dumps({"state": info.power_state.name, "after": after.power_state.name,
                      "left": [str(i) for i in await d.list_instances()]}), flush=True)
    await d.cleanup()
asyncio.run(main())
"""


async def _agent(step: str, home: Path, spec: GuestSpec) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", AGENT, step, msgspec.json.encode(settings_for(home)).decode(),
        str(home), msgspec.json.encode(spec).decode(), cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def test_guests_outlive_a_killed_agent_and_the_next_one_finds_them(other_home: Path):
    spec = guest_spec()
    first = await _agent("spawn", other_home, spec)
    out, err = await asyncio.wait_for(first.communicate(), 300)
    assert first.returncode == -signal.SIGKILL and b"spawned" in out, err.decode()[-2000:]
    (pid,) = qemu_pids(spec.server_id)  # the guest outlived its agent

    second = await _agent("adopt", other_home, spec)
    assert second.stdin is not None and second.stdout is not None
    # After its clean stop (cleanup) it waits on stdin; the guest still runs.
    while (line := await asyncio.wait_for(second.stdout.readline(), 300)) != b'{"stopped": true}\n':
        assert line, "the second agent ended early"
    assert qemu_pids(spec.server_id) == [pid]
    out, err = await asyncio.wait_for(second.communicate(b"go\n"), 300)
    assert second.returncode == 0, err.decode()[-2000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result == {"state": "RUNNING", "after": "RUNNING", "left": []}
    assert qemu_pids(spec.server_id) == []

