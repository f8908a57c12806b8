"""The statuses of volumes and snapshots, and the one table of what each
operation moves them through.

A volume has one status (Cinder's), not the three axes of a server:

    creating -> available -> attaching -> in-use -> detaching -> available
    available | error | error_deleting -> deleting -> (deleted)

A transient status (creating, attaching, detaching, deleting) is begun by the
API with a guarded update (``shared.db.volumes.begin``) in the transaction that
writes the message doing the work, and ended by whoever does it (the volume
service, or the compute agent of the server for attach and detach) with another
guarded update naming the status it expects. A failure ends it as
:attr:`VolumeTransition.failed` says, with a reason the user reads
(``error_reason``). Nothing stays transient: the volume service's sweep fails
what has been in a transient status for longer than its deadline.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class VolumeStatus(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    ATTACHING = "attaching"
    IN_USE = "in-use"
    DETACHING = "detaching"
    DELETING = "deleting"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"


class SnapshotStatus(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    DELETING = "deleting"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"


class VolumeTransition(NamedTuple):
    """One operation on a volume (or a snapshot), as every service sees it."""

    name: str
    """As users read it in faults: ``"attach"``, ``"delete"``."""
    allowed_from: tuple[str, ...]
    """The statuses it may begin from (empty: it begins with the row's insert)."""
    during: str
    """The transient status it runs in."""
    done: str | None
    """The status once it worked; None: the row is deleted."""
    failed: str
    """The status a failure leaves (with ``error_reason``)."""


_V = VolumeStatus

CREATE = VolumeTransition("create", (), _V.CREATING, _V.AVAILABLE, _V.ERROR)
# Cinder lets error and error_deleting volumes be deleted again: the way out of both.
DELETE = VolumeTransition("delete", (_V.AVAILABLE, _V.ERROR, _V.ERROR_DELETING), _V.DELETING,
                          None, _V.ERROR_DELETING)
# A failed attach leaves the volume as it was (the guest never saw it), as in Nova.
ATTACH = VolumeTransition("attach", (_V.AVAILABLE,), _V.ATTACHING, _V.IN_USE, _V.AVAILABLE)
# A failed detach leaves it attached: the guest still holds the disk.
DETACH = VolumeTransition("detach", (_V.IN_USE,), _V.DETACHING, _V.AVAILABLE, _V.IN_USE)

_S = SnapshotStatus

SNAPSHOT_CREATE = VolumeTransition("snapshot", (), _S.CREATING, _S.AVAILABLE, _S.ERROR)
SNAPSHOT_DELETE = VolumeTransition("snapshot delete", (_S.AVAILABLE, _S.ERROR, _S.ERROR_DELETING),
                                   _S.DELETING, None, _S.ERROR_DELETING)

VOLUME_TRANSITIONS: dict[str, VolumeTransition] = {
    t.during: t for t in (CREATE, DELETE, ATTACH, DETACH)}
"""The volume operations by the transient status they run in (for the sweep)."""

SNAPSHOT_TRANSITIONS: dict[str, VolumeTransition] = {
    t.during: t for t in (SNAPSHOT_CREATE, SNAPSHOT_DELETE)}

SNAPSHOT_SOURCE_STATUSES: tuple[str, ...] = (_V.AVAILABLE, _V.IN_USE)
"""A volume can be snapshotted in these statuses (in-use only with ``force``)."""
