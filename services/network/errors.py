"""Errors the network service raises.

They live in ``shared.errors`` so that callers (the compute agent) get them back
as the same classes across RPC; this module re-exports them for the service.
"""

from shared.errors import NoMoreFixedIps, SupernetExhausted

__all__ = ["NoMoreFixedIps", "SupernetExhausted"]
