"""One libvirt connection, used from asyncio.

* libvirt's default event loop runs in one daemon thread per process
  (``virEventRegisterDefaultImpl`` before the first open, then a thread looping
  ``virEventRunDefaultImpl``); it delivers domain lifecycle and device-removed
  events, which :meth:`Connection.wait_for` turns into awaitable conditions, and the
  connection's close callback, which marks it lost so the next call reopens it.
* Every blocking call runs in a thread (``asyncio.to_thread``).
* libvirt's errors become the interface's typed ones (:func:`translate`): a
  missing domain is GuestNotFound, a broken connection HypervisorUnavailable
  (retryable), anything else DriverError. libvirt's own words name host paths
  and internals: they go to the log, never into the exception's message.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

import libvirt
import structlog

from services.compute_agent.drivers.base import (
    DriverError,
    GuestNotFound,
    HypervisorUnavailable,
)

log = structlog.get_logger(__name__)
T = TypeVar("T")

_CONNECTION_ERRORS = {libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN,
                      libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_AUTH_FAILED,
                      libvirt.VIR_ERR_AUTH_CANCELLED, libvirt.VIR_ERR_AUTH_UNAVAILABLE}
_CONNECTION_DOMAINS = {libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE}


def translate(exc: libvirt.libvirtError, doing: str) -> DriverError:
    """The typed error for ``exc``; ``doing`` completes "The hypervisor could not ..."."""
    code, domain = exc.get_error_code(), exc.get_error_domain()
    log.warning("libvirt.error", doing=doing, code=code, domain=domain,
                message=exc.get_error_message())
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        return GuestNotFound("The server is not on this host.")
    if code in _CONNECTION_ERRORS or (code == libvirt.VIR_ERR_SYSTEM_ERROR
                                      and domain in _CONNECTION_DOMAINS):
        return HypervisorUnavailable("The hypervisor of this host cannot be reached; "
                                     "try again later.")
    return DriverError(f"The hypervisor could not {doing}.")


class _EventThread:
    """libvirt's default event loop, run by one daemon thread for the whole process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._stop = False
        self._thread: threading.Thread | None = None
        self._registered = False

    def acquire(self) -> None:
        with self._lock:
            if not self._registered:
                libvirt.virEventRegisterDefaultImpl()
                # libvirt prints every error to stderr by default; ours reach the log.
                libvirt.registerErrorHandler(lambda ctx, err: None, None)
                self._registered = True
            self._users += 1
            if self._thread is None:
                self._stop = False
                self._thread = threading.Thread(target=self._run, name="libvirt-events",
                                                daemon=True)
                self._thread.start()

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0 or self._thread is None:
                return
            thread, self._thread, self._stop = self._thread, None, True
        # Wake the loop (it blocks until something happens) so it sees the stop.
        timer = libvirt.virEventAddTimeout(0, lambda *_: None, None)
        thread.join(timeout=5)
        libvirt.virEventRemoveTimeout(timer)

    def _run(self) -> None:
        while not self._stop:
            libvirt.virEventRunDefaultImpl()


EVENTS = _EventThread()


class Connection:
    """A libvirt connection that reopens itself after it is lost."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._conn: libvirt.virConnect | None = None
        self._open_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[UUID, set[asyncio.Future[None]]] = {}
        self._events = False
        self.poll_s = 1.0
        """How often :meth:`wait_for` looks again without an event."""

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        if not self._events:
            EVENTS.acquire()
            self._events = True
        await self.call(lambda conn: None, "be reached")

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.to_thread(self._close, conn)
        if self._events:
            await asyncio.to_thread(EVENTS.release)
            self._events = False

    @staticmethod
    def _close(conn: libvirt.virConnect) -> None:
        try:
            conn.close()
        except libvirt.libvirtError as exc:
            log.info("libvirt.close_failed", message=exc.get_error_message())

    def _get(self) -> libvirt.virConnect:
        """The open connection (opened again if it was lost); in a thread."""
        with self._open_lock:
            if self._conn is not None:
                return self._conn
            started = time.monotonic()
            conn = libvirt.open(self.uri)
            try:
                conn.registerCloseCallback(self._on_close, None)
            except libvirt.libvirtError:
                pass  # drivers in the library itself (embed, test) have no close event
            conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                        self._on_lifecycle, None)
            # A guest released a hot-plugged device (a volume's disk): detach waits for it.
            conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                        self._on_device_removed, None)
            log.info("libvirt.opened", uri=self.uri, seconds=round(time.monotonic() - started, 2))
            self._conn = conn
            return conn

    async def call(self, fn: Callable[[libvirt.virConnect], T], doing: str) -> T:
        """``fn(connection)`` in a thread, its libvirt errors translated."""
        def run() -> T:
            try:
                return fn(self._get())
            except libvirt.libvirtError as exc:
                err = translate(exc, doing)
                if isinstance(err, HypervisorUnavailable):
                    self._lost(close=True)
                raise err from None
        return await asyncio.to_thread(run)

    def _lost(self, *, close: bool) -> None:
        """Forget the connection so the next call opens a new one; ``close``: let go
        of it too (its handle and event registration), never from libvirt's own
        close callback, where closing is not allowed."""
        with self._open_lock:
            conn, self._conn = self._conn, None
        if close and conn is not None:
            self._close(conn)

    def _on_close(self, conn: libvirt.virConnect, reason: int, opaque: object) -> None:
        log.warning("libvirt.connection_lost", uri=self.uri, reason=reason)
        self._lost(close=False)

    # --- events ---

    def _on_lifecycle(self, conn: libvirt.virConnect, dom: libvirt.virDomain, event: int,
                      detail: int, opaque: object) -> None:
        self._wake_soon(dom)

    def _on_device_removed(self, conn: libvirt.virConnect, dom: libvirt.virDomain, alias: str,
                           opaque: object) -> None:
        self._wake_soon(dom)

    def _wake_soon(self, dom: libvirt.virDomain) -> None:
        """Wake the waits on the domain's guest (from libvirt's event thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            server_id = UUID(dom.UUIDString())
        except (libvirt.libvirtError, ValueError):
            return
        loop.call_soon_threadsafe(self._wake, server_id)

    def _wake(self, server_id: UUID) -> None:
        for fut in self._waiters.pop(server_id, set()):
            if not fut.done():
                fut.set_result(None)

    async def wait_for(self, server_id: UUID, check: Callable[[], Awaitable[bool]], *,
                       timeout_s: float) -> bool:
        """Wait until ``await check()`` is true, looking again at each event
        of the guest (and every :attr:`poll_s`, in case an event was lost); False if it is
        not true by the deadline."""
        deadline = time.monotonic() + timeout_s
        while True:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(server_id, set()).add(fut)
            try:
                if await check():
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                await asyncio.wait([fut], timeout=min(left, self.poll_s))
            finally:
                waiters = self._waiters.get(server_id)
                if waiters is not None:
                    waiters.discard(fut)
                    if not waiters:
                        del self._waiters[server_id]
