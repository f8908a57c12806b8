"""The words of the fault a server gets when no host can take it.

Users read the message in the server's ``fault``, so it says why in their
terms: which filter removed the last hosts and what was missing, or that no
host is up at all. The details add the whole filter trail for operators.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from services.scheduler.filters import FilterOutcome
from services.scheduler.host_state import HostSnapshot
from shared.db.build_requests import Attempt, describe

MESSAGE = "No valid host was found."


class NoValidHostFault(msgspec.Struct, frozen=True, kw_only=True):
    message: str
    """``No valid host was found. <why>.``: what the user sees."""
    details: str
    """The reason again with the filter trail (``RamFilter 2->0``)."""


def no_hosts_up(snapshot: HostSnapshot) -> str:
    if snapshot.down == 0 and snapshot.disabled == 0:
        return "no compute hosts are up (none has registered)"
    parts = []
    if snapshot.down:
        parts.append(f"{snapshot.down} with no heartbeat for {snapshot.service_down_time_s:g} s")
    if snapshot.disabled:
        parts.append(f"{snapshot.disabled} disabled")
    return f"no compute hosts are up ({', '.join(parts)})"


def claims_lost(tried: Sequence[str]) -> str:
    return ("every host that passed the filters ran out of room before it could be claimed "
            f"(tried {', '.join(tried)})")


def fault(snapshot: HostSnapshot, outcome: FilterOutcome | None = None,
          tried: Sequence[str] = (), *, earlier: Sequence[Attempt] = ()) -> NoValidHostFault:
    """The fault for a build that found no host.

    Args:
        snapshot: the hosts read for the request.
        outcome: the filters' result, None when no host was up to filter.
        tried: hosts whose claim failed, when the filters did leave some.
        earlier: hosts earlier attempts of this build failed on (it was scheduled
            again after each), which the filters then excluded.
    """
    if not snapshot.live or outcome is None:
        why = no_hosts_up(snapshot)
    elif outcome.why_none is not None:
        why = outcome.why_none
    else:
        why = claims_lost(tried)
    details = why if outcome is None or not outcome.steps else f"{why}; filters: {outcome.trail()}"
    message = f"{MESSAGE} {why[0].upper()}{why[1:]}."
    if earlier:
        message += f" Earlier attempts: {describe(list(earlier))}."
    return NoValidHostFault(message=message, details=details)
