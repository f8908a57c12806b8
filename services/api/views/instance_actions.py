"""Instance action views (section 4.4.20): an action, and with its events.

Nova's field names and shapes: an action has ``action``, ``instance_uuid``,
``request_id``, ``user_id``, ``project_id``, ``start_time`` and ``message``
(null unless the action failed); each event has ``event``, ``start_time``,
``finish_time``, ``result`` (``Success``/``Error``, null while it runs) and,
for admins only, ``traceback``. The host an event ran on is never shown: it is
not part of Nova's event view and would tell users where their servers live.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def action_time(ts: datetime | None) -> str | None:
    """Timestamps as the spec's action examples write them: 2013-05-10T12:41:56.000000 (UTC).

    Unlike the rest of the API (``...Z``), Nova rendered action and event times
    with microseconds and no zone; the spec's examples keep that.
    """
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def action(row: Any) -> dict[str, Any]:
    return {
        "action": row["action"],
        "instance_uuid": str(row["server_id"]),
        "message": row["message"],
        "project_id": row["project_id"],
        "request_id": row["request_id"],
        "start_time": action_time(row["start_time"]),
        "user_id": row["user_id"],
    }


def event(row: Any, *, is_admin: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "event": row["event"],
        "start_time": action_time(row["start_time"]),
        "finish_time": action_time(row["finish_time"]),
        "result": row["result"],
    }
    # The traceback names internals (exception types, hosts): admins only, as in Nova.
    if is_admin:
        view["traceback"] = row["traceback"]
    return view


def action_with_events(row: Any, events: list[Any], *, is_admin: bool) -> dict[str, Any]:
    view = action(row)
    view["events"] = [event(e, is_admin=is_admin) for e in events]
    return view
