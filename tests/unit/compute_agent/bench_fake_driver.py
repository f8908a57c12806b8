"""What keeping the fake host on disk costs: spawn then destroy N guests, with
``state_dir`` set and empty, all delays 0. Prints times; asserts nothing (not a test).

    .venv/bin/python -m tests.unit.compute_agent.bench_fake_driver [N] [DIR ...]

Each DIR is a place to put a state directory in (default: the system's temp
directory); the file system matters (see the README's fake host section).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import uuid

from services.compute_agent.drivers import GuestSpec
from services.compute_agent.drivers.fake import FakeDriver, FakeSettings
from shared.contracts.common import FlavorSpec, ImageSpec, Port
from tests.unit.compute_agent.guests import guest_spec

FLAVOR = FlavorSpec(id="1", name="tiny", ram_mb=16, disk_gb=1, vcpus=1)
IMAGE = ImageSpec(id=uuid.uuid4(), name="cirros")


def _specs(n: int) -> list[GuestSpec]:
    port = Port(id=uuid.uuid4(), network_id=uuid.uuid4(), network_name="private",
                address="10.0.0.5", mac="fa:16:3e:00:00:05")
    return [guest_spec(server_id=uuid.uuid4(), name=f"vm{i}", flavor=FLAVOR, image=IMAGE,
                      ports=(port,), admin_pass="pw") for i in range(n)]


async def _run(state_dir: str, n: int) -> tuple[float, float]:
    """Seconds to spawn ``n`` guests at once, then to destroy them all at once."""
    driver = FakeDriver(FakeSettings(ram_mb=n * FLAVOR.ram_mb, spawn_delay_s=0,
                                     destroy_delay_s=0, state_dir=state_dir), host="bench")
    specs = _specs(n)
    start = time.perf_counter()
    await asyncio.gather(*(driver.spawn(s) for s in specs))
    spawned = time.perf_counter()
    assert len(await driver.list_instances()) == n
    await asyncio.gather(*(driver.destroy(s.server_id) for s in specs))
    done = time.perf_counter()
    assert await driver.list_instances() == []
    return spawned - start, done - spawned


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 2000
    places = argv[1:] or [tempfile.gettempdir()]
    memory = asyncio.run(_run("", n))
    print(f"{n} guests, in memory:      spawn {memory[0]:6.2f} s  destroy {memory[1]:6.2f} s")
    for place in places:
        state_dir = tempfile.mkdtemp(prefix="nimbus-bench-", dir=place)
        try:
            disk = asyncio.run(_run(state_dir, n))
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)
        ratio = sum(disk) / sum(memory)
        print(f"{n} guests, state in {place}: spawn {disk[0]:6.2f} s  destroy {disk[1]:6.2f} s"
              f"  ({ratio:.1f}x in memory's time, {sum(disk) / n * 1e3:.2f} ms a guest)")


if __name__ == "__main__":
    main(sys.argv[1:])
