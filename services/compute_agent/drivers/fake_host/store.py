"""The fake host's on-disk format: where its guests' state lives and what it guarantees.

This module is the one home of the format; ``FakeHost`` (``host.py``) builds the
hypervisor's behaviour on it, and the driver and the operator's CLI both go through
``FakeHost``. With ``state_dir`` set::

    <state_dir>/<host>/
        <server_id>/                what the guest was given: its disk (``fake_disk``)
        domains/                    the hypervisor's guests; flock()ed by writers
            <server_id>/            one guest: exists exactly while the guest does
                state.json          its GuestRecord as JSON (spec without admin_pass,
                                    power_state, rescued, incarnation, format)
                console.log         its serial console, append-only, UTF-8 lines
                                    "[HH:MM:SS.mmm] text"
                state.json.tmp      a write cut short (kill -9): ignored, overwritten
            .new-<server_id>/       a guest being created; ignored
            .gone-<server_id>/      a guest being removed; ignored

What a reader may rely on:

* A guest is on the host exactly while ``domains/<server_id>/`` exists, and that
  directory always holds a complete ``state.json``: a guest is created by renaming
  a complete ``.new-`` directory into place and removed by renaming it away first.
* ``state.json`` is only ever replaced whole (a temp file renamed over it): a reader
  sees the old record or the new one, never a mix, and takes no lock.
* Writers that change or remove a guest do so holding an exclusive ``flock`` on
  ``domains/``, reading the record afresh under it: an agent and an operator
  acting on one guest at the same moment never lose each other's change. The
  kernel drops the lock of a writer that dies.
* Console lines are appended with one ``O_APPEND`` write per batch (a batch is
  never split); a batch racing the guest's removal goes with the guest.
* Nothing is fsync()ed: the state survives the death of any process, not a crash
  of the machine (as libvirt keeps a running guest's state in /run).
* Readers ignore fields they do not know; ``format`` changes only when older
  readers would misread a record, and a reader refuses a format it does not know.

Without ``state_dir`` the same records live in this process (``memory.MemoryStore``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol
from uuid import UUID

import msgspec

from services.compute_agent.drivers.base import DriverError, GuestSpec
from shared.states import PowerState

FORMAT = 2
"""2: the guest spec keeps what the user gave in ``GuestSpec.config``."""
DOMAINS, STATE, CONSOLE = "domains", "state.json", "console.log"
_TMP = STATE + ".tmp"  # one name is enough: writers of state.json hold the host's lock


class GuestRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One guest as the fake hypervisor knows it (its ``state.json``)."""

    format: int = FORMAT
    spec: GuestSpec
    """What the guest was created (or last rebuilt) with; ``admin_pass`` is never kept."""
    power_state: PowerState
    rescued: bool = False
    """Running from a rescue image, its own disk attached as the second one."""
    incarnation: str
    """New at each creation: a guest destroyed and created again under the same id
    is another guest, which an operation begun on the first must leave alone."""

    @property
    def server_id(self) -> UUID:
        return self.spec.server_id


class Store(Protocol):
    """Where a FakeHost keeps its records. Callers hold ``locked()`` around
    ``used_ram_mb``, ``create``, ``replace`` and ``remove``."""

    def locked(self) -> AbstractContextManager[None]: ...
    def read(self, server_id: UUID) -> GuestRecord | None: ...
    def ids(self) -> list[UUID]: ...
    def used_ram_mb(self) -> int: ...
    def create(self, record: GuestRecord, console: str) -> bool: ...
    def replace(self, record: GuestRecord) -> None: ...
    def remove(self, server_id: UUID) -> None: ...
    def append(self, server_id: UUID, text: str) -> None: ...
    def console(self, server_id: UUID) -> str | None: ...


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(GuestRecord)


class DiskStore:
    """The records as files under ``<root>/domains/`` (the format above)."""

    def __init__(self, root: Path) -> None:
        self._dir = str(root / DOMAINS)
        self._ram: dict[str, int] = {}
        """Guest directory name -> RAM, as of the listing ``_seen`` describes."""
        self._used = 0
        """The sum of ``_ram``."""
        self._seen: tuple[int, int, int] | None = None
        # Listing domains/ costs milliseconds with thousands of guests, and each
        # spawn needs the RAM in use: for that, the listing is kept while domains/
        # looks the same. It is only read and changed under the host's lock. Our own
        # creations and removals update it in place (nobody else changes domains/
        # meanwhile); anyone else's change moves domains/'s mtime and link count,
        # and the next look lists it again. (On kernels before 6.13, whose mtimes
        # move in clock ticks, another process's create and remove within one tick
        # of our look could go unseen until the next change.)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        try:
            fd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            os.makedirs(self._dir, exist_ok=True)
            fd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # and with it the lock

    def read(self, server_id: UUID) -> GuestRecord | None:
        return self._read(str(server_id))

    def _read(self, name: str) -> GuestRecord | None:
        path = f"{self._dir}/{name}/{STATE}"
        try:
            with open(path, "rb") as f:
                data = f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            record = _DECODER.decode(data)
        except msgspec.DecodeError as exc:
            raise DriverError(f"guest {name}'s state on the host is damaged: {exc}") from None
        if record.format != FORMAT:
            raise DriverError(f"guest {name}'s state on the host has format {record.format}; "
                              f"this version reads {FORMAT}")
        return record

    def _look(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self._dir)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_nlink)

    def _names(self) -> list[str]:
        try:
            return [n for n in os.listdir(self._dir) if not n.startswith(".")]
        except FileNotFoundError:
            return []

    def ids(self) -> list[UUID]:
        # Listed afresh, not from the RAM listing: a guest list is asked for rarely
        # (a reconcile sweep), and then must not miss a guest whatever the clock.
        ids = []
        for name in self._names():
            try:
                ids.append(UUID(name))
            except ValueError:  # not a guest's directory
                continue
        return ids

    def used_ram_mb(self) -> int:
        seen = self._look()
        if seen != self._seen:
            ram: dict[str, int] = {}
            for name in self._names():
                known = self._ram.get(name)
                if known is None:
                    record = self._read(name)
                    if record is None:  # gone meanwhile, or not a guest's directory
                        continue
                    known = record.spec.flavor.ram_mb
                ram[name] = known
            self._ram, self._used, self._seen = ram, sum(ram.values()), seen
        return self._used

    def _noted(self, exact: bool, name: str, ram: int | None) -> None:
        """Our own change of domains/ (under the lock): the RAM listing stays exact
        without listing again, if it was exact before."""
        if not exact:
            return
        self._used -= self._ram.pop(name, 0)
        if ram is not None:
            self._ram[name] = ram
            self._used += ram
        self._seen = self._look()

    def create(self, record: GuestRecord, console: str) -> bool:
        name = str(record.server_id)
        staging = f"{self._dir}/.new-{name}"
        shutil.rmtree(staging, ignore_errors=True)  # a creation cut short by a kill -9
        exact = self._look() == self._seen
        os.mkdir(staging)
        try:
            _write(f"{staging}/{STATE}", _ENCODER.encode(record))
            if console:
                _write(f"{staging}/{CONSOLE}", console.encode())
            os.rename(staging, f"{self._dir}/{name}")
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                return False
            raise
        self._noted(exact, name, record.spec.flavor.ram_mb)
        return True

    def replace(self, record: GuestRecord) -> None:
        base = f"{self._dir}/{record.server_id}"
        _write(f"{base}/{_TMP}", _ENCODER.encode(record))
        os.replace(f"{base}/{_TMP}", f"{base}/{STATE}")

    def remove(self, server_id: UUID) -> None:
        name = str(server_id)
        tomb = f"{self._dir}/.gone-{name}"
        shutil.rmtree(tomb, ignore_errors=True)  # a removal cut short by a kill -9
        exact = self._look() == self._seen
        try:
            os.rename(f"{self._dir}/{name}", tomb)
        except FileNotFoundError:
            return
        shutil.rmtree(tomb, ignore_errors=True)
        self._noted(exact, name, None)  # after the tomb went: that too changed domains/

    def append(self, server_id: UUID, text: str) -> None:
        try:
            fd = os.open(f"{self._dir}/{server_id}/{CONSOLE}",
                         os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except (FileNotFoundError, NotADirectoryError):
            return  # the guest is gone, and its console with it
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    def console(self, server_id: UUID) -> str | None:
        try:
            with open(f"{self._dir}/{server_id}/{CONSOLE}", encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError):
            return "" if self.read(server_id) is not None else None


def _write(path: str, data: bytes) -> None:
    # Owner-only: a record holds the guest's user data and config drive.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
