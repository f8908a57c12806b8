"""Volume service messages (spec section 4.4.13), served on the ``volume`` queue.

v1: CreateVolume, DeleteVolume, CreateSnapshot, DeleteSnapshot (casts, sent
through the outbox by the API, and by the compute agent for a server's
``delete_on_termination`` volumes).

The API writes the row in its transient status (``shared.volume_states``) in the
transaction that writes the message; the service reads the row, does the work
through its backend and ends the status with a guarded update. Every message may
come more than once: a handler finds the row no longer in the status it expects
and does nothing.

Attach and detach are compute messages (``shared.contracts.compute``): the
server's host does them, with the :class:`VolumeConnection` the backend wrote
on the volume's row when it made it.
"""

from __future__ import annotations

from uuid import UUID

import msgspec

QUEUE = "volume"


class VolumeConnection(msgspec.Struct, frozen=True, kw_only=True):
    """How a compute host reaches a volume's bits (Cinder's connection info).

    The file backend's volumes are ``driver_volume_type`` ``"file"``: ``name`` is
    the file's name inside the volume store that the volume service and every
    compute host share (``shared.volume_store``), ``format`` how its bytes are laid
    out. Another backend would add its type (``"rbd"``, ``"iscsi"``) and use
    ``options`` for the rest.
    """

    driver_volume_type: str = "file"
    name: str
    format: str = "qcow2"
    options: dict[str, str] = {}


class CreateVolume(msgspec.Struct, tag="create_volume", frozen=True, kw_only=True):
    """Make the bits of the volume ``volume_id`` (in ``creating``): blank, from its
    snapshot, or from its image; it ends ``available`` or ``error``."""

    volume_id: UUID


class DeleteVolume(msgspec.Struct, tag="delete_volume", frozen=True, kw_only=True):
    """Remove the bits of the volume ``volume_id`` (in ``deleting``) and mark it
    deleted; a failure leaves it ``error_deleting``."""

    volume_id: UUID


class CreateSnapshot(msgspec.Struct, tag="create_snapshot", frozen=True, kw_only=True):
    """Copy the snapshot's volume (as it is now) into the snapshot ``snapshot_id``
    (in ``creating``); it ends ``available`` or ``error``."""

    snapshot_id: UUID


class DeleteSnapshot(msgspec.Struct, tag="delete_snapshot", frozen=True, kw_only=True):
    """Remove the snapshot's bits and mark it deleted; a failure leaves it
    ``error_deleting``."""

    snapshot_id: UUID


VolumeMessage = CreateVolume | DeleteVolume | CreateSnapshot | DeleteSnapshot
