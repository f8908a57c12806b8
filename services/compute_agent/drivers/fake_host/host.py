"""FakeHost: the simulated host's hypervisor, its guests as the host itself sees them.

It holds what a real hypervisor (libvirt/QEMU) holds apart from its management
agent: each guest's definition, power state and console. The driver asks it
(``define``, ``update``, ``undefine``, ``log``), and so does an operator behind the
control plane's back (``create``, ``stop``, ``crash``, ``start``, ``destroy``, as
``virsh`` would), through the CLI in ``__main__`` or, in tests, directly. Every
call is synchronous and reads the store afresh, so what one actor did is what the
next sees; where the records live and what that guarantees is ``store``'s business.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec

from services.compute_agent.drivers.base import (
    DriverError,
    GuestConfig,
    GuestSpec,
    hostname_for,
)
from services.compute_agent.drivers.fake_console import (
    GOING_DOWN,
    KERNEL_PANIC,
    POWER_DOWN,
    POWERING_ON,
    boot_lines,
    creation_lines,
    stamped,
)
from services.compute_agent.drivers.fake_host.memory import MemoryStore
from services.compute_agent.drivers.fake_host.store import DiskStore, GuestRecord, Store
from shared.contracts.common import FlavorSpec, ImageSpec
from shared.states import PowerState

ORPHAN_IMAGE = ImageSpec(id=UUID(int=0), name="unknown")
"""The image an operator-made guest reports: the control plane never gave it one."""


class FakeHost:
    """The guests of one simulated host: on disk under ``<state_dir>/<host>/``, or,
    with no ``state_dir``, in this process only.

    Reads return None for a guest the host does not have. The driver's changes
    return None when the guest is gone (or was created anew: see
    ``GuestRecord.incarnation``); the operator's raise DriverError, as ``virsh`` fails.
    """

    def __init__(self, state_dir: str | os.PathLike[str] | None, host: str) -> None:
        self.host = host
        self.root: Path | None = Path(state_dir) / host if state_dir else None
        """Where the host keeps its state; None in memory."""
        self._store: Store = DiskStore(self.root) if self.root is not None else MemoryStore()

    def disk_dir(self, server_id: UUID) -> Path | None:
        """Where the guest's disk (what it was given, ``fake_disk``) lives; None in memory."""
        return None if self.root is None else self.root / str(server_id)

    # --- reading ---

    def guest(self, server_id: UUID) -> GuestRecord | None:
        return self._store.read(server_id)

    def ids(self) -> list[UUID]:
        """Every guest the host holds, in no particular order."""
        return self._store.ids()

    def console(self, server_id: UUID) -> str | None:
        """The guest's console log so far, one line per line."""
        return self._store.console(server_id)

    # --- what the driver does ---

    def define(self, spec: GuestSpec, *, power_state: PowerState = PowerState.NOSTATE,
               lines: Sequence[str] = (), ram_limit_mb: int | None = None) -> GuestRecord | None:
        """Create the guest in ``power_state`` with ``lines`` on its console; None if the
        host already has a guest of that id. DriverError if ``ram_limit_mb`` is given
        and the host's guests, with this one, would need more."""
        record = GuestRecord(spec=_without_secrets(spec), power_state=power_state,
                             incarnation=uuid.uuid4().hex)
        with self._store.locked():
            if self._store.read(spec.server_id) is not None:
                return None
            ram = spec.flavor.ram_mb
            if ram_limit_mb is not None and self._store.used_ram_mb() + ram > ram_limit_mb:
                raise DriverError(f"host {self.host} has not enough memory for {ram} MB")
            if not self._store.create(record, stamped(lines) if lines else ""):
                return None  # someone else created it just now
        return record

    def update(self, server_id: UUID, incarnation: str, *, power_state: PowerState | None = None,
               rescued: bool | None = None, spec: GuestSpec | None = None,
               lines: Sequence[str] = ()) -> GuestRecord | None:
        """Set what is given on the guest, then log ``lines``; None (and nothing done)
        if the guest is gone or is not ``incarnation`` any more."""
        changes: dict[str, Any] = {}
        if power_state is not None:
            changes["power_state"] = power_state
        if rescued is not None:
            changes["rescued"] = rescued
        if spec is not None:
            changes["spec"] = _without_secrets(spec)
        return self._change(server_id, lambda r: r.incarnation == incarnation, changes, lines)

    def undefine(self, server_id: UUID, incarnation: str | None = None) -> GuestRecord | None:
        """Remove the guest (only if it is ``incarnation``, when given) and its console;
        the record it had, or None if there was none to remove. Its disk stays."""
        with self._store.locked():
            current = self._store.read(server_id)
            if current is None or incarnation not in (None, current.incarnation):
                return None
            self._store.remove(server_id)
        return current

    def log(self, server_id: UUID, *lines: str) -> None:
        """Append ``lines`` to the guest's console (lost if the guest is gone)."""
        self._store.append(server_id, stamped(lines))

    def _change(self, server_id: UUID, applies: Callable[[GuestRecord], bool],
                changes: dict[str, Any], lines: Sequence[str]) -> GuestRecord | None:
        with self._store.locked():
            current = self._store.read(server_id)
            if current is None or not applies(current):
                return None
            new = msgspec.structs.replace(current, **changes)
            if new != current:
                self._store.replace(new)
            if lines:
                self._store.append(server_id, stamped(lines))
        return new

    # --- what an operator does behind the control plane's back ---

    def create(self, server_id: UUID, *, name: str, ram_mb: int = 512) -> GuestRecord:
        """A running guest the control plane knows nothing of (an orphan). The host's
        capacity is not checked: an operator may overcommit it."""
        spec = GuestSpec(server_id=server_id, name=name, image=ORPHAN_IMAGE,
                         flavor=FlavorSpec(id="", name="", ram_mb=ram_mb, disk_gb=0, vcpus=1),
                         config=GuestConfig(hostname=hostname_for(name, server_id)))
        record = self.define(spec, power_state=PowerState.RUNNING,
                             lines=[*creation_lines(spec), *boot_lines(spec)])
        if record is None:
            raise DriverError(f"host {self.host} already has a guest {server_id}")
        return record

    def stop(self, server_id: UUID) -> GuestRecord:
        """The running guest shuts itself down (``poweroff`` inside it): SHUTDOWN."""
        return self._act(server_id, running=True, to=PowerState.SHUTDOWN,
                         lines=(GOING_DOWN, POWER_DOWN))

    def crash(self, server_id: UUID) -> GuestRecord:
        """The running guest's kernel panics: CRASHED until someone starts it again."""
        return self._act(server_id, running=True, to=PowerState.CRASHED, lines=KERNEL_PANIC)

    def start(self, server_id: UUID) -> GuestRecord:
        """Boot a guest that is not running (stopped, crashed, or never booted): RUNNING."""
        current = self.guest(server_id)
        lines = boot_lines(current.spec) if current is not None else []
        return self._act(server_id, running=False, to=PowerState.RUNNING,
                         lines=(POWERING_ON, *lines))

    def destroy(self, server_id: UUID) -> None:
        """The guest vanishes from the host: its record, console and disk."""
        if self.undefine(server_id) is None:
            raise DriverError(f"host {self.host} has no guest {server_id}")
        disk = self.disk_dir(server_id)
        if disk is not None:
            shutil.rmtree(disk, ignore_errors=True)

    def _act(self, server_id: UUID, *, running: bool, to: PowerState,
             lines: Sequence[str]) -> GuestRecord:
        new = self._change(server_id, lambda r: (r.power_state is PowerState.RUNNING) == running,
                           {"power_state": to}, lines)
        if new is not None:
            return new
        current = self.guest(server_id)
        if current is None:
            raise DriverError(f"host {self.host} has no guest {server_id}")
        raise DriverError(f"guest {server_id} is {current.power_state.name.lower()}")


def _without_secrets(spec: GuestSpec) -> GuestSpec:
    """The spec as the host keeps it: never with the admin password."""
    if spec.config.admin_pass is None:
        return spec
    return msgspec.structs.replace(
        spec, config=msgspec.structs.replace(spec.config, admin_pass=None))
