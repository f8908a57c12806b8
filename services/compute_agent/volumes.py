"""Attaching and detaching volumes on this host (spec 4.4.13.11-14).

These change a volume, not the server's task: the volume's own status is the
state (``shared.volume_states``: attaching -> in-use, detaching -> available),
begun by the API and ended here with a guarded update
(``shared.db.volumes.end_attach`` / ``end_detach``). The rules are the runner's:

* **one at a time** with every other operation on the server
  (``ComputeAgent.serialized``): an attach never races a reboot or a delete;
* **the guard**: the volume is read fresh and the work goes ahead only if it is
  still attaching (detaching) to this server, the server lives on this host and
  the request is the one that began it; a message delivered twice, or after
  the server was deleted (which released its volumes), finds nothing to do;
* **the work** through the driver, recorded as the instance action's event
  (``compute_attach_volume``, as Nova names it);
* **failures**: a transient one goes up for the RPC layer to retry; anything
  else ends the volume as the table says (a failed attach leaves it
  available, a failed detach in-use) with the reason in ``error_reason`` and
  the event's error; when the retries run out, :func:`give_up` does the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg
import structlog

from services.compute_agent.drivers import DriverError
from shared.contracts.compute import AttachVolume, DetachVolume
from shared.db import actions, servers, volumes
from shared.db.actions import ActionRef
from shared.errors import ComputeError
from shared.retry import describe, is_transient
from shared.rpc.server import CallContext
from shared.volume_states import ATTACH, DETACH, VolumeTransition

if TYPE_CHECKING:
    from services.compute_agent.agent import ComputeAgent

log = structlog.get_logger(__name__)

_EVENTS = {ATTACH.name: "compute_attach_volume", DETACH.name: "compute_detach_volume"}


def _parts(msg: AttachVolume | DetachVolume) -> tuple[VolumeTransition, UUID]:
    if isinstance(msg, AttachVolume):
        return ATTACH, msg.device.volume_id
    return DETACH, msg.volume_id


async def _guard(agent: ComputeAgent, transition: VolumeTransition, server_id: UUID,
                 volume_id: UUID, ctx: CallContext) -> bool:
    async with agent.worker.pool.acquire() as conn:
        vol = await volumes.get(conn, volume_id)
        row = await servers.get(conn, server_id)
    return (vol is not None and vol["deleted_at"] is None and vol["status"] == transition.during
            and vol["server_id"] == server_id
            and (ctx.request_id is None or vol["status_request_id"] is None
                 or vol["status_request_id"] == ctx.request_id)
            and row is not None and row["deleted_at"] is None and row["host"] == agent.host)


async def _end(conn: asyncpg.Connection, transition: VolumeTransition, server_id: UUID,
               volume_id: UUID, failed: str | None) -> bool:
    end = volumes.end_attach if transition is ATTACH else volumes.end_detach
    return await end(conn, volume_id, server_id, failed=failed)


def reason_for(transition: VolumeTransition, volume_id: UUID, server_id: UUID,
               exc: BaseException) -> str:
    """The one wording of a failed attach or detach, for the user."""
    what = (f"The {transition.name} of volume {volume_id} "
            f"{'to' if transition is ATTACH else 'from'} instance {server_id} failed")
    if isinstance(exc, ComputeError):
        return f"{what}: {exc.message}"
    if isinstance(exc, DriverError):  # worded for users by the driver
        return f"{what}: {exc}"
    return f"{what}: an internal error occurred."


async def handle(agent: ComputeAgent, msg: AttachVolume | DetachVolume, ctx: CallContext) -> None:
    transition, volume_id = _parts(msg)
    sid = msg.server_id
    async with agent.serialized(sid):
        if not await _guard(agent, transition, sid, volume_id, ctx):
            log.info("compute.volume_skipped", server_id=str(sid), volume_id=str(volume_id),
                     operation=transition.name)
            return
        action = ActionRef(sid, ctx.request_id)
        try:
            async with actions.event(agent.worker.pool, action, _EVENTS[transition.name],
                                     host=agent.host):
                if isinstance(msg, AttachVolume):
                    await agent.driver.attach_volume(sid, msg.device)
                else:
                    await agent.driver.detach_volume(sid, volume_id)
                async with agent.worker.pool.acquire() as conn, conn.transaction():
                    ended = await _end(conn, transition, sid, volume_id, None)
                    await actions.finish(conn, action)
        except Exception as exc:
            if is_transient(exc):
                raise
            await _fail(agent, transition, sid, volume_id, action,
                        reason_for(transition, volume_id, sid, exc), exc)
            return
    log.info("compute.volume_done", server_id=str(sid), volume_id=str(volume_id),
             operation=transition.name, ended=ended)


async def give_up(agent: ComputeAgent, msg: AttachVolume | DetachVolume, ctx: CallContext,
                  exc: BaseException, deadline_s: float) -> None:
    """The retries ran out: end the volume's attach (detach) as a failure."""
    transition, volume_id = _parts(msg)
    sid = msg.server_id
    async with agent.serialized(sid):
        if not await _guard(agent, transition, sid, volume_id, ctx):
            return
        reason = (f"The {transition.name} of volume {volume_id} could not be completed: a "
                  f"service it needs stayed unavailable for {deadline_s:g} s.")
        await _fail(agent, transition, sid, volume_id, ActionRef(sid, ctx.request_id), reason,
                    exc)


async def _fail(agent: ComputeAgent, transition: VolumeTransition, server_id: UUID,
                volume_id: UUID, action: ActionRef, reason: str, exc: BaseException) -> None:
    expected = isinstance(exc, (ComputeError, DriverError)) or is_transient(exc)
    log.error("compute.volume_failed", server_id=str(server_id), volume_id=str(volume_id),
              operation=transition.name, error=f"{type(exc).__name__}: {describe(exc)}",
              exc_info=not expected)
    if transition is ATTACH:
        # Whatever the driver did half-way goes: the volume is free again.
        try:
            await agent.driver.detach_volume(server_id, volume_id)
        except Exception as again:
            log.warning("compute.volume_cleanup_failed", volume_id=str(volume_id),
                        error=describe(again))
    async with agent.worker.pool.acquire() as conn, conn.transaction():
        await _end(conn, transition, server_id, volume_id, reason)
        await actions.finish(conn, action, reason)


HANDLERS: dict[type, Any] = {AttachVolume: handle, DetachVolume: handle}
