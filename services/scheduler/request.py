"""What a build asks of a host, as the filters and weighers see it."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import msgspec

from shared.contracts.common import FlavorSpec, ImageSpec
from shared.contracts.scheduler import ScheduleBuild


class ServerPlacement(msgspec.Struct, frozen=True, kw_only=True):
    """Where a server named in a scheduler hint lives: its host and that host's zone."""

    host: str
    availability_zone: str | None = None


def _server_ids(value: object) -> tuple[str, ...]:
    """The server ids a hint names: one id or a list of them (Nova took both).

    Ids are written in canonical UUID form where they are UUIDs, so they match
    the keys of :attr:`PlacementRequest.placements`; anything else is kept as
    given and simply never found.
    """
    if value is None or value == "":
        return ()
    items: Iterable[object] = value if isinstance(value, (list, tuple)) else (value,)
    out: list[str] = []
    for item in items:
        text = str(item).strip()
        try:
            text = str(UUID(text))
        except ValueError:
            pass
        if text and text not in out:
            out.append(text)
    return tuple(out)


class PlacementRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One server to place: its needs, the zone it asked for and its hints.

    Filters receive the whole request, so a filter for a scheduler hint reads
    ``hints`` without the pipeline changing. The hints that name other servers
    (``same_host``, ``different_host``, ``near``; section 4.4.10) are resolved
    once per build into :attr:`placements` (see ``host_state.locate_servers``),
    so the filters stay pure.
    """

    server_id: UUID
    flavor: FlavorSpec
    project_id: str = ""
    image: ImageSpec | None = None
    availability_zone: str | None = None
    hints: dict[str, object] = {}
    excluded_hosts: tuple[str, ...] = ()
    placements: dict[str, ServerPlacement] = {}
    """Servers named by the hints that could be found: same project, not
    deleted, placed on a host; by id. A named server missing here cannot
    satisfy its hint."""

    @property
    def ram_mb(self) -> int:
        return self.flavor.ram_mb

    @property
    def disk_gb(self) -> int:
        """Root, ephemeral and swap disk together, in whole GB (swap rounded up)."""
        return self.flavor.total_disk_gb

    @property
    def vcpus(self) -> int:
        return self.flavor.vcpus

    @property
    def same_host(self) -> tuple[str, ...]:
        """Servers this one must share a host with (hint ``same_host``)."""
        return _server_ids(self.hints.get("same_host"))

    @property
    def different_host(self) -> tuple[str, ...]:
        """Servers this one must not share a host with (hint ``different_host``)."""
        return _server_ids(self.hints.get("different_host"))

    @property
    def near(self) -> str | None:
        """The server this one should be near: same zone, its host if it fits (hint ``near``)."""
        ids = _server_ids(self.hints.get("near"))
        return ids[0] if ids else None

    @property
    def near_placement(self) -> ServerPlacement | None:
        """Where the ``near`` server lives; None without the hint, and None when that
        server cannot be found (another project's, deleted, not placed yet).

        ``near`` is a preference, not a condition: section 4.4.10's example names
        a server its reader does not have and answers 202, and Nova, which had no
        filter of that name, ignored it. A server that cannot be found leaves the
        hint unused, and the build goes wherever it would have gone without it.
        ``same_host`` and ``different_host`` are conditions instead (``missing``).
        """
        near = self.near
        return None if near is None else self.placements.get(near)

    @property
    def referenced_servers(self) -> tuple[str, ...]:
        """Every server id the hints name, each once."""
        near = (self.near,) if self.near else ()
        return tuple(dict.fromkeys((*self.same_host, *self.different_host, *near)))

    def missing(self, ids: Iterable[str]) -> list[str]:
        """Those of ``ids`` that were not found placed (gone, another project's, unplaced)."""
        return [i for i in ids if i not in self.placements]

    @classmethod
    def from_message(cls, msg: ScheduleBuild) -> PlacementRequest:
        return cls(server_id=msg.build.server_id, flavor=msg.build.flavor,
                   project_id=msg.build.project_id, image=msg.build.image,
                   availability_zone=msg.availability_zone or None, hints=dict(msg.hints),
                   excluded_hosts=tuple(msg.excluded_hosts))
