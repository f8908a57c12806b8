"""Shared wording for the scheduler-hint filters' explanations (shown to users).

Hosts are never named: a user sees servers' ``hostId`` hashes, not host names.
"""

from __future__ import annotations

from collections.abc import Sequence


def servers_phrase(ids: Sequence[str]) -> str:
    """``server a`` or ``servers a, b``."""
    return ("server " if len(ids) == 1 else "servers ") + ", ".join(ids)


def not_found(ids: Sequence[str]) -> str:
    verb = "was" if len(ids) == 1 else "were"
    return (f"{servers_phrase(ids)} {verb} not found, or {'is' if len(ids) == 1 else 'are'} "
            "deleted or not placed on a host yet")
