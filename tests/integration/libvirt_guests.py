"""What the tests of the libvirt driver share: the hypervisor's home, a guest's spec,
and waits for what a guest prints on its serial console.

Real libvirt (``qemu:///embed`` in a temporary directory), real QEMU, the project's
own guest image. The session's root is ``conftest.libvirt_home``: libvirt keeps an
embedded QEMU driver for the life of the process and refuses a second root
(measured), so every module of this process opens that one.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from services.compute_agent.drivers.base import DriverContext, GuestConfig, GuestSpec
from services.compute_agent.drivers.libvirt.settings import LibvirtSettings
from shared.contracts.common import FlavorSpec, ImageSpec, Port
from shared.image_store import ImageStore
from shared.states import PowerState
from shared.volume_store import VolumeStore

if TYPE_CHECKING:  # conftest imports this module: libvirt-python only where it is used
    from services.compute_agent.drivers.libvirt.driver import LibvirtDriver

REPO = Path(__file__).resolve().parents[2]
BOOT_DEADLINE_S = 180.0
"""TCG on a busy 2-core machine: the tiny guest is ready in ~7 s alone, much later when shared."""
IMAGE = "nimbus-tiny.qcow2"


def make_home(tiny_image: Path) -> Path:
    """A short path: QEMU's monitor sockets live under it (108-byte socket paths).
    ``images/`` is the image store, ``volumes/`` the volume store."""
    path = Path(tempfile.mkdtemp(prefix="nlv", dir="/tmp"))
    (path / "images").mkdir()
    (path / "images" / IMAGE).symlink_to(tiny_image)
    (path / "volumes").mkdir()
    return path


def kill_guests(home: Path) -> None:
    """Whatever QEMU a failed test left under ``home``, by pid file."""
    for pidfile in home.glob("state/*/libvirt/run/qemu/nimbus-*.pid"):
        try:
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def settings_for(home: Path, **kw: object) -> LibvirtSettings:
    return LibvirtSettings(state_dir=str(home / "state"), **kw)  # type: ignore[arg-type]


def context_for(home: Path) -> DriverContext:
    return DriverContext(host="itest", image_store=ImageStore(str(home / "images")),
                         volume_store=VolumeStore(str(home / "volumes")))


def guest_spec(server_id: uuid.UUID | None = None, *, hostname: str = "tiny-host") -> GuestSpec:
    port = Port(id=uuid.uuid4(), network_id=uuid.uuid4(), network_name="private",
                address="10.0.1.5", mac="52:54:00:4e:10:01", cidr="10.0.1.0/24",
                gateway="10.0.1.1")
    return GuestSpec(server_id=server_id or uuid.uuid4(), name="tiny",
                     flavor=FlavorSpec(id="1", name="tiny", ram_mb=256, disk_gb=1, vcpus=1),
                     image=ImageSpec(id=uuid.uuid4(), name="nimbus-tiny", location=IMAGE,
                                     disk_format="qcow2"),
                     ports=(port,),
                     config=GuestConfig(hostname=hostname, user_data=b"hello from nimbus\n",
                                        config_drive=True))


def qemu_pids(server_id: uuid.UUID) -> list[int]:
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


async def until(what: str, check: Callable[[], Awaitable[bool] | bool],
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


def console_line(pattern: str, prefix: str = "nimbus-tiny") -> re.Pattern[str]:
    """A whole console line ``<prefix>: <pattern>``."""
    return re.compile(rf"^{prefix}: {pattern}\r?$", re.MULTILINE)


async def console_end(d: LibvirtDriver, server_id: uuid.UUID) -> int:
    """Where the console ends now (``since=`` of a later :func:`console_has`)."""
    return len(await d.console_output(server_id))


async def console_has(d: LibvirtDriver, server_id: uuid.UUID, pattern: str,
                      deadline_s: float = BOOT_DEADLINE_S, *, since: int = 0,
                      prefix: str = "nimbus-tiny") -> float:
    """Seconds until the console (appended to across boots) has such a line after
    its first ``since`` characters."""
    regex = console_line(pattern, prefix)

    async def seen() -> bool:
        return bool(regex.search((await d.console_output(server_id))[since:]))
    try:
        return await until(f"'{pattern}' on the console", seen, deadline_s)
    except AssertionError:
        tail = (await d.console_output(server_id))[-3000:]
        raise AssertionError(f"no '{prefix}: {pattern}' on the console:\n{tail}") from None


async def power(d: LibvirtDriver, server_id: uuid.UUID) -> PowerState | None:
    info = await d.get_info(server_id)
    return None if info is None else info.power_state
