"""The fake host's guests kept in this process only, compactly: they die with it.

Used without ``state_dir`` (unit tests, scale runs). An agent process may simulate
hundreds of hosts holding tens of thousands of guests between them (the bench's
100,000 servers on 1,000 hosts), so a guest costs about a kilobyte here, not
several: its record is kept as msgpack bytes and decoded at each read (as
``DiskStore`` decodes its file at each read), and its console as one UTF-8 bytes
object holding at most the last ``CONSOLE_LIMIT`` bytes, as a hypervisor's
console log is rotated. A guest's console of a spawn is about 300 bytes; a guest
rebooted a thousand times would otherwise grow without end.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from uuid import UUID

import msgspec

from services.compute_agent.drivers.fake_host.store import GuestRecord

CONSOLE_LIMIT = 64 * 1024
"""Bytes of each guest's console kept: its tail, from the first whole line."""

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(GuestRecord)


class MemoryStore:
    """The records in this process only (see the module docstring)."""

    def __init__(self) -> None:
        self._records: dict[UUID, bytes] = {}
        self._consoles: dict[UUID, bytes] = {}
        self._used_ram_mb = 0
        """The sum of the guests' flavors' RAM, kept as they come and go."""

    def locked(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()  # one process, and every call runs to its end

    def read(self, server_id: UUID) -> GuestRecord | None:
        data = self._records.get(server_id)
        return None if data is None else _DECODER.decode(data)

    def ids(self) -> list[UUID]:
        return list(self._records)

    def used_ram_mb(self) -> int:
        return self._used_ram_mb

    def create(self, record: GuestRecord, console: str) -> bool:
        if record.server_id in self._records:
            return False
        self._records[record.server_id] = _ENCODER.encode(record)
        self._consoles[record.server_id] = _tail(console.encode())
        self._used_ram_mb += record.spec.flavor.ram_mb
        return True

    def replace(self, record: GuestRecord) -> None:
        old = self.read(record.server_id)
        if old is not None:
            self._used_ram_mb -= old.spec.flavor.ram_mb
        self._records[record.server_id] = _ENCODER.encode(record)
        self._used_ram_mb += record.spec.flavor.ram_mb

    def remove(self, server_id: UUID) -> None:
        old = self.read(server_id)
        if old is not None:
            self._used_ram_mb -= old.spec.flavor.ram_mb
        self._records.pop(server_id, None)
        self._consoles.pop(server_id, None)

    def append(self, server_id: UUID, text: str) -> None:
        console = self._consoles.get(server_id)
        if console is not None:
            self._consoles[server_id] = _tail(console + text.encode())

    def console(self, server_id: UUID) -> str | None:
        console = self._consoles.get(server_id)
        return None if console is None else console.decode()


def _tail(console: bytes) -> bytes:
    """``console`` cut to its last ``CONSOLE_LIMIT`` bytes, from a line's start."""
    if len(console) <= CONSOLE_LIMIT:
        return console
    cut = console[-CONSOLE_LIMIT:]
    return cut[cut.find(b"\n") + 1:]
