"""The volume service: Cinder's place in Nimbus's split architecture.

A worker on the ``volume`` queue (``shared.contracts.volume``) that makes,
copies and removes the bits of volumes and snapshots through a storage backend
(``backends``), moves their rows on with guarded updates (``shared.db.volumes``)
and sweeps what stays transient too long (``sweep``). Attach and detach are the
compute agents' (they reach a volume by the connection the backend wrote).
"""
