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
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from deploy.guest_image import ensure_image
from deploy.local import hypervisor
from services.compute_agent.drivers.base import DriverContext, GuestConfig, GuestSpec
from services.compute_agent.drivers.libvirt.driver import LibvirtDriver
from services.compute_agent.drivers.libvirt.settings import LibvirtSettings
from shared.contracts.common import FlavorSpec, ImageSpec, Port
from shared.image_store import ImageStore
from shared.states import PowerState

REPO = Path(__file__).resolve().parents[2]
BOOT_DEADLINE_S = 180.0
"""TCG on a busy 2-core machine: the tiny guest is ready in ~7 s alone, much later when shared."""
IMAGE = "nimbus-tiny.qcow2"


@pytest.fixture(scope="session")
def tiny_image() -> Path:
    hypervisor.ensure_packages()
    out = Path(os.environ.get("NIMBUS_GUEST_IMAGE_DIR", REPO / ".run" / "images"))
    return ensure_image(out)


def _make_home(tiny_image: Path) -> Path:
    """A short path: QEMU's monitor sockets live under it (108-byte socket paths)."""
    path = Path(tempfile.mkdtemp(prefix="nlv", dir="/tmp"))
    (path / "images").mkdir()
    (path / "images" / IMAGE).symlink_to(tiny_image)
    return path


@pytest.fixture(scope="session")
def home(tiny_image: Path) -> Iterator[Path]:
    """The one embedded root this test process opens: libvirt keeps an embedded QEMU
    driver for the life of the process, and refuses a second root (measured)."""
    path = _make_home(tiny_image)
    yield path
    _kill_guests(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def other_home(tiny_image: Path) -> Iterator[Path]:
    """A root for agents run as child processes (never opened by this process)."""
    path = _make_home(tiny_image)
    yield path
    _kill_guests(path)
    shutil.rmtree(path, ignore_errors=True)


def _settings(home: Path) -> LibvirtSettings:
    return LibvirtSettings(state_dir=str(home / "state"))


def _context(home: Path) -> DriverContext:
    return DriverContext(host="itest", image_store=ImageStore(str(home / "images")))


@pytest.fixture
async def driver(home: Path) -> AsyncIterator[LibvirtDriver]:
    d = LibvirtDriver.from_settings(_settings(home), _context(home))
    await d.init_host()
    yield d
    await d.cleanup()


def _spec(server_id: uuid.UUID | None = None) -> GuestSpec:
    port = Port(id=uuid.uuid4(), network_id=uuid.uuid4(), network_name="private",
                address="10.0.1.5", mac="52:54:00:4e:10:01", cidr="10.0.1.0/24",
                gateway="10.0.1.1")
    return GuestSpec(server_id=server_id or uuid.uuid4(), name="tiny",
                     flavor=FlavorSpec(id="1", name="tiny", ram_mb=256, disk_gb=1, vcpus=1),
                     image=ImageSpec(id=uuid.uuid4(), name="nimbus-tiny", location=IMAGE,
                                     disk_format="qcow2"),
                     ports=(port,),
                     config=GuestConfig(hostname="tiny-host", user_data=b"hello from nimbus\n",
                                        config_drive=True))


def _qemu_pids(server_id: uuid.UUID) -> list[int]:
    """QEMU processes whose command line names the guest's uuid."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"qemu-system" in cmdline and str(server_id).encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def _kill_guests(home: Path) -> None:
    """Whatever QEMU a failed test left under ``home``, by pid file."""
    for pidfile in home.glob("state/*/libvirt/run/qemu/nimbus-*.pid"):
        try:
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass


async def _until(what: str, check: Callable[[], Awaitable[bool] | bool],
                 deadline_s: float = BOOT_DEADLINE_S) -> float:
    """Seconds until ``check()`` held; AssertionError after the deadline."""
    started = time.monotonic()
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started > deadline_s:
            raise AssertionError(f"not {what} within {deadline_s} s")
        await asyncio.sleep(0.1)  # polling a condition, with a deadline


def _line(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"^nimbus-tiny: {pattern}\r?$", re.MULTILINE)


async def _mark(d: LibvirtDriver, server_id: uuid.UUID) -> int:
    return len(await d.console_output(server_id))


async def _console_has(d: LibvirtDriver, server_id: uuid.UUID, pattern: str,
                       deadline_s: float = BOOT_DEADLINE_S, *, since: int = 0) -> float:
    """Seconds until the console (appended to across boots) has such a line after
    its first ``since`` characters."""
    regex = _line(pattern)

    async def seen() -> bool:
        return bool(regex.search((await d.console_output(server_id))[since:]))
    try:
        return await _until(f"'{pattern}' on the console", seen, deadline_s)
    except AssertionError:
        tail = (await d.console_output(server_id))[-3000:]
        raise AssertionError(f"no '{pattern}' on the console:\n{tail}") from None


async def _state(d: LibvirtDriver, server_id: uuid.UUID) -> PowerState | None:
    info = await d.get_info(server_id)
    return None if info is None else info.power_state


async def test_a_guest_boots_stops_reboots_is_rescued_snapshotted_and_destroyed(
        driver: LibvirtDriver, home: Path, capsys: pytest.CaptureFixture[str]):
    spec = _spec()
    sid = spec.server_id
    timings: dict[str, float] = {}

    started = time.monotonic()
    await driver.spawn(spec)
    timings["spawn (to RUNNING)"] = time.monotonic() - started
    assert await _state(driver, sid) is PowerState.RUNNING
    assert sid in await driver.list_instances()
    assert len(_qemu_pids(sid)) == 1
    await driver.spawn(spec)  # redelivered: no-op
    assert len(_qemu_pids(sid)) == 1

    timings["boot (spawn to ready)"] = await _console_has(driver, sid, "ready") + \
        timings["spawn (to RUNNING)"]
    console = await driver.console_output(sid)
    assert "SeaBIOS" in console
    for line in ("hostname=tiny-host", f"uuid={sid}", "user-data: hello from nimbus",
                 "disk boot 1, first booted by .*"):
        assert _line(line).search(console), line

    host, port = await driver.vnc_endpoint(sid) or ("", 0)
    assert host == "127.0.0.1" and port >= 5900
    reader, writer = await asyncio.open_connection(host, port)
    assert (await asyncio.wait_for(reader.readexactly(4), 10)) == b"RFB "
    writer.close()

    # Clean stop: the ACPI button, the guest powers itself off, QEMU goes.
    started = time.monotonic()
    await driver.power_off(sid, timeout_s=120)
    timings["power_off (clean)"] = time.monotonic() - started
    assert await _state(driver, sid) is PowerState.SHUTDOWN
    assert _line("power button: shutting down").search(await driver.console_output(sid))
    assert _qemu_pids(sid) == []
    assert await driver.vnc_endpoint(sid) is None

    mark = await _mark(driver, sid)
    await driver.power_on(sid)
    await _console_has(driver, sid, "disk boot 2, first booted by .*", since=mark)
    mark = await _mark(driver, sid)
    await driver.reboot(sid, hard=True)
    await _console_has(driver, sid, "disk boot 3, first booted by .*", since=mark)
    await _console_has(driver, sid, "ready", since=mark)  # the power button is heard now
    mark = await _mark(driver, sid)
    started = time.monotonic()
    await driver.reboot(sid, hard=False)
    timings["reboot (soft)"] = time.monotonic() - started
    assert _line("power button: shutting down").search(
        (await driver.console_output(sid))[mark:])  # it was clean
    await _console_has(driver, sid, "disk boot 4, first booted by .*", since=mark)

    mark = await _mark(driver, sid)
    await driver.rescue(sid, admin_pass="rescue-pw", image=None)
    info = await driver.get_info(sid)
    assert info is not None and info.rescued and info.power_state is PowerState.RUNNING
    await _console_has(driver, sid, r"rescue: found the server's disk on vdb \(boot 4, .*",
                       since=mark)
    await driver.rescue(sid, admin_pass="rescue-pw", image=None)  # again: no-op
    mark = await _mark(driver, sid)
    await driver.unrescue(sid)
    info = await driver.get_info(sid)
    assert info is not None and not info.rescued
    await _console_has(driver, sid, "disk boot 5, first booted by .*", since=mark)

    image_id = uuid.uuid4()
    written = await driver.snapshot(sid, image_id)
    path = home / "images" / written.location
    info_run = await asyncio.to_thread(subprocess.run, ["qemu-img", "info", "--output=json",
                                                       str(path)], check=True,
                                       capture_output=True)
    described = json.loads(info_run.stdout)
    assert described["format"] == "qcow2" and "backing-filename" not in described
    assert written.size_bytes == path.stat().st_size > 0
    assert await _state(driver, sid) is PowerState.RUNNING

    # Rebuild: a new disk from the image (the boot count starts again), a new
    # config drive with the new hostname, the user data kept.
    mark = await _mark(driver, sid)
    await driver.rebuild(msgspec.structs.replace(spec, config=GuestConfig(
        hostname="rebuilt", config_drive=True)))
    for line in ("hostname=rebuilt", "user-data: hello from nimbus",
                 "disk boot 1, first booted by .*", "ready"):
        await _console_has(driver, sid, line, since=mark)

    # QEMU killed under the guest: libvirt sees it go.
    (pid,) = _qemu_pids(sid)
    os.kill(pid, signal.SIGKILL)
    await _until("seen crashed", lambda: _crashed(driver, sid), 60)
    await driver.power_off(sid, timeout_s=5)  # the stop the agent then makes
    assert await _state(driver, sid) is PowerState.SHUTDOWN and _qemu_pids(sid) == []

    await driver.destroy(sid)
    await driver.destroy(sid)
    assert await driver.get_info(sid) is None and sid not in await driver.list_instances()
    assert _qemu_pids(sid) == [] and not driver.guest_dir(sid).exists()
    with capsys.disabled():
        print("\nlibvirt driver timings (s): "
              + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))


async def _crashed(d: LibvirtDriver, sid: uuid.UUID) -> bool:
    return await _state(d, sid) is PowerState.CRASHED


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
        sys.executable, "-c", AGENT, step, msgspec.json.encode(_settings(home)).decode(),
        str(home), msgspec.json.encode(spec).decode(), cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def test_guests_outlive_a_killed_agent_and_the_next_one_finds_them(other_home: Path):
    spec = _spec()
    first = await _agent("spawn", other_home, spec)
    out, err = await asyncio.wait_for(first.communicate(), 300)
    assert first.returncode == -signal.SIGKILL and b"spawned" in out, err.decode()[-2000:]
    (pid,) = _qemu_pids(spec.server_id)  # the guest outlived its agent

    second = await _agent("adopt", other_home, spec)
    assert second.stdin is not None and second.stdout is not None
    # After its clean stop (cleanup) it waits on stdin; the guest still runs.
    while (line := await asyncio.wait_for(second.stdout.readline(), 300)) != b'{"stopped": true}\n':
        assert line, "the second agent ended early"
    assert _qemu_pids(spec.server_id) == [pid]
    out, err = await asyncio.wait_for(second.communicate(b"go\n"), 300)
    assert second.returncode == 0, err.decode()[-2000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result == {"state": "RUNNING", "after": "RUNNING", "left": []}
    assert _qemu_pids(spec.server_id) == []

