"""Scheduling a build again when its host died before it finished (Nova's reschedule).

A build placed on a host that then counts as down (``shared.db.hosts``: silent
for the down time, with no database or scheduler outage to excuse it) would
never finish there. While it has tries left (``max_attempts`` in all, as Nova's
``[scheduler] max_attempts``), :func:`reschedule` takes it back: the dead host's
claim is released, the attempt (host and why) is recorded on the server's build
request, the server goes back to BUILD(scheduling) with no host, and a new
``ScheduleBuild`` excluding every host tried so far goes out through the outbox,
all in one transaction. Its ports stay: the next host's agent takes them over.
Out of tries, the server goes to ERROR with a fault naming every host tried and
why each failed.

If the dead host comes back, its agent finds the server elsewhere: the build
message still on its queue is skipped, and the reconcile loop destroys the
half-built guest.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import msgspec
import structlog

from shared import outbox
from shared.contracts.scheduler import QUEUE
from shared.db import build_requests, hosts
from shared.db import servers as servers_db
from shared.db.build_requests import Attempt
from shared.states import BUILD_SEQUENCE

log = structlog.get_logger(__name__)

_LOCK_BUILDING = """
SELECT * FROM servers WHERE id = $1 AND vm_state = 'building' AND host = $2
   AND task_state = ANY($3::text[]) FOR UPDATE"""

_BACK_TO_SCHEDULING = """
UPDATE servers SET host = NULL, task_state = 'scheduling', updated_at = now()
 WHERE id = $1 RETURNING id"""


async def reschedule(conn: asyncpg.Connection, server_id: UUID, host: str, reason: str, *,
                     max_attempts: int, lease_s: float) -> outbox.Item | None:
    """Take the build of ``server_id`` off dead ``host`` (see the module docstring).

    Returns the outbox item to hand to the relay after commit, or None when the
    server was failed instead (out of tries, or no build request to send again)
    or has moved on meanwhile. Runs in the caller's transaction.
    """
    async with conn.transaction():
        row = await conn.fetchrow(_LOCK_BUILDING, server_id, host,
                                  [t.value for t in BUILD_SEQUENCE])
        if row is None:
            return None  # finished, deleted or failed meanwhile
        await hosts.release(conn, server_id)
        request = await build_requests.get_for_update(conn, server_id)
        if request is None:  # a server created before build requests were kept
            await _fail(conn, server_id, f"Compute host {host} {reason} during the build.")
            return None
        msg, _ = request
        tried = await build_requests.add_attempt(conn, server_id, Attempt(host=host, reason=reason))
        if len(tried) >= max_attempts:
            await _fail(conn, server_id, "The build did not finish: "
                                         f"{build_requests.describe(tried)}.")
            return None
        await conn.execute(_BACK_TO_SCHEDULING, server_id)
        again = msgspec.structs.replace(
            msg, excluded_hosts=tuple(dict.fromkeys((*msg.excluded_hosts,
                                                     *(a.host for a in tried)))))
        item = await outbox.put(conn, QUEUE, again, request_id=row["request_id"],
                                lease_s=lease_s)
    log.warning("scheduler.rescheduled", server_id=str(server_id), dead_host=host,
                attempt=len(tried) + 1, excluded=list(again.excluded_hosts))
    return item


async def _fail(conn: asyncpg.Connection, server_id: UUID, message: str) -> None:
    await servers_db.set_error(conn, server_id, code=500, message=message,
                               details="build rescheduling", expect=BUILD_SEQUENCE)
    log.warning("scheduler.build_failed", server_id=str(server_id), reason=message)

