"""Instance action views (section 4.4.20): an action, and with its events.

Nova's field names and shapes: an action has ``action``, ``instance_uuid``,
``request_id``, ``user_id``, ``project_id``, ``start_time`` and ``message``
(null unless the action failed); each event has ``event``, ``start_time``,
``finish_time``, ``result`` (``Success``/``Error``, null while it runs) and,
for admins only, ``traceback``. The host an event ran on is never shown: it is
not part of Nova's event view and would tell users where their servers live.
Times have microseconds and no zone, as the spec's examples (``links.microtime``).
"""

from __future__ import annotations

from typing import Any

from services.api.views.links import microtime


def action(row: Any) -> dict[str, Any]:
    return {
        "action": row["action"],
        "instance_uuid": str(row["server_id"]),
        "message": row["message"],
        "project_id": row["project_id"],
        "request_id": row["request_id"],
        "start_time": microtime(row["start_time"]),
        "user_id": row["user_id"],
    }


def event(row: Any, *, is_admin: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "event": row["event"],
        "start_time": microtime(row["start_time"]),
        "finish_time": microtime(row["finish_time"]),
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
