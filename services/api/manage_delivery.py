"""Operator commands about delivery: the dead-letter queues, and hosts that are gone.

``dead-letters`` lists (or sends back) the messages the services gave up on:
each service moves a message whose retries ran out, or that failed for good,
to ``<queue>.dead-letter`` with why (``shared.rpc.server``). ``forget-host``
frees what a compute host that will never come back still holds: the fixed
addresses of its servers that were deleted without it (``shared.teardown``),
and its row, so it no longer counts as a (down) host.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
import asyncpg
import msgspec

from shared.contracts.queues import all_queues
from shared.rpc import connect
from shared.rpc.server import dead_letter_queue

_LIVE_SERVERS = """
SELECT count(*) FROM servers WHERE host = $1 AND deleted_at IS NULL"""

_HELD = """
SELECT DISTINCT p.server_id AS id FROM ports p JOIN servers s ON s.id = p.server_id
 WHERE p.host = $1 AND s.deleted_at IS NOT NULL"""

_FREE = """
WITH gone AS (DELETE FROM ports WHERE server_id = $1 RETURNING network_id, address)
UPDATE fixed_ips f SET server_id = NULL, reserved_at = NULL
  FROM gone WHERE f.network_id = gone.network_id AND f.address = gone.address"""

_FORGET = "DELETE FROM compute_hosts WHERE host = $1"


@dataclass
class DeadLetter:
    queue: str
    reason: str
    at: str
    request_id: str | None
    body: str


async def dead_letters(conn: asyncpg.Connection, amqp_url: str, *, queue: str | None = None,
                       requeue: bool = False) -> list[DeadLetter]:
    """The dead letters of every service queue (or of ``queue``), oldest first.

    Listing leaves them where they are; ``requeue`` publishes each to the queue it
    died in and removes it from the dead-letter queue (once the cause is fixed).
    """
    names = [queue] if queue else await all_queues(conn)
    connection = await connect(amqp_url)
    found: list[DeadLetter] = []
    try:
        channel = await connection.channel(publisher_confirms=True)
        for name in names:
            try:
                q = await channel.declare_queue(dead_letter_queue(name), passive=True)
            except Exception:  # none made yet: reopen the channel the broker closed
                channel = await connection.channel(publisher_confirms=True)
                continue
            held = []
            while (m := await q.get(no_ack=False, fail=False)) is not None:
                held.append(m)
                headers = m.headers or {}
                found.append(DeadLetter(
                    queue=name, reason=str(headers.get("x-nimbus-dead-reason", "")),
                    at=str(headers.get("x-nimbus-dead-at", "")),
                    request_id=headers.get("x-compute-request-id"),  # type: ignore[arg-type]
                    body=m.body.decode("utf-8", "replace")))
            for m in held:
                if requeue:
                    headers = {k: v for k, v in (m.headers or {}).items()
                               if not k.startswith("x-nimbus-dead")}
                    await channel.default_exchange.publish(
                        aio_pika.Message(m.body, headers=headers, content_type=m.content_type,
                                         delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        routing_key=name)
                    await m.ack()
                else:
                    await m.nack(requeue=True)
        await channel.close()
    finally:
        await connection.close()
    return found


def format_dead_letters(letters: list[DeadLetter], *, requeued: bool) -> str:
    if not letters:
        return "no dead letters"
    lines = [f"{len(letters)} dead letter(s){' sent back to their queues' if requeued else ''}:"]
    for d in letters:
        kind = ""
        try:
            kind = msgspec.json.decode(d.body).get("type", "")
        except Exception:  # undecodable is one of the reasons a letter is dead
            kind = "?"
        lines.append(f"  {d.at}  {d.queue:28} {kind:22} {d.request_id or '-'}  {d.reason}")
    return "\n".join(lines)


async def forget_host(conn: asyncpg.Connection, host: str) -> str:
    """Free the fixed addresses a gone host's deleted servers still hold and drop its row."""
    live = await conn.fetchval(_LIVE_SERVERS, host)
    if live:
        raise ValueError(f"host {host} still has {live} server(s); delete them first "
                         "(a server of a host that is down is deleted without it)")
    async with conn.transaction():
        held = [r["id"] for r in await conn.fetch(_HELD, host)]
        for sid in held:
            await conn.execute(_FREE, sid)
        await conn.execute(_FORGET, host)
    return f"host {host} forgotten; fixed addresses of {len(held)} deleted server(s) freed"

