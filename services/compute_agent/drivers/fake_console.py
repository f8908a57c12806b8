"""What the fake host's guests show on their serial console, and the log's line format.

The lines here are written by more than one actor: the driver (spawn, reboot,
power off/on, rescue) and the operator's out-of-band commands (``fake_host``)
create, boot and shut down guests alike, so a console log tells the same story
whoever acted. Notes only the driver writes (``nimbus-fake: soft reboot: ...``)
stay in the driver.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from services.compute_agent.drivers.base import GuestSpec
from shared.contracts.compute import BlockDevice

BOOTING = "Booting the kernel."
GOING_DOWN = "The system is going down for power off NOW!"
POWER_DOWN = "reboot: Power down"
POWERING_ON = "nimbus-fake: powering on"
KERNEL_PANIC = ("Kernel panic - not syncing: Fatal exception",
                "---[ end Kernel panic - not syncing: Fatal exception ]---")


def creation_lines(spec: GuestSpec) -> list[str]:
    """The hypervisor notes that a guest is being created (spawn, rebuild)."""
    lines = [f"nimbus-fake: creating guest {spec.name} ({spec.flavor.vcpus} vCPU, "
             f"{spec.flavor.ram_mb} MB) from {source_of(spec)}"]
    lines += [volume_line(v, "attached") for v in spec.volumes if not v.boot]
    config = spec.config
    if config.config_drive:
        lines.append(f"nimbus-fake: config drive with {len(config.metadata)} "
                     f"metadata item(s) and {len(config.files)} file(s)")
    elif config.files:
        lines.append(f"nimbus-fake: injecting {len(config.files)} file(s)")
    return lines


def source_of(spec: GuestSpec) -> str:
    """What the guest's root disk is, as the console names it."""
    boot = spec.boot_volume
    if boot is not None:
        return f"volume {boot.volume_id}"
    return f"image {spec.image.name}" if spec.image is not None else "no image"


def volume_line(device: BlockDevice, what: str) -> str:
    """A volume came or went: the line a guest's kernel would log (virtio_blk)."""
    name = device.device.rsplit("/", 1)[-1]
    return f"nimbus-fake: volume {device.volume_id} {what} as {name}"


def boot_lines(spec: GuestSpec) -> list[str]:
    """The guest comes up: the kernel boots, the NICs get their addresses, a login
    prompt. Every boot writes these lines, so a reboot shows as a new boot."""
    return [BOOTING, *(f"eth: {p.mac} got address {p.address}" for p in spec.ports),
            f"{spec.name} login:"]


def stamped(lines: Iterable[str]) -> str:
    """``lines`` as the console log keeps them: ``[HH:MM:SS.mmm] line``, one per line."""
    stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    return "".join(f"[{stamp}] {line}\n" for line in lines)
