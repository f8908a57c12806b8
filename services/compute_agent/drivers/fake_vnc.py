"""The fake driver's VNC server: a real RFB endpoint per guest, with a blank screen.

Each guest of the fake host that is asked for its console gets a TCP listener
on 127.0.0.1 (an ephemeral port) speaking enough of the RFB protocol (RFC 6143)
for a VNC client or the console proxy to connect: the ``RFB 003.008`` banner,
version and security negotiation (security type None), ClientInit/ServerInit
with the guest's name, and then the client messages, answering a full
FramebufferUpdateRequest with an empty update (the screen never changes, so
incremental requests wait forever, as on an idle desktop). It shows nothing, but everything
between the browser and it is real: the proxy, the websocket, the TCP relay.
"""

from __future__ import annotations

import asyncio
import struct

import structlog

log = structlog.get_logger(__name__)

BANNER = b"RFB 003.008\n"

# How long a client may take for each step of the handshake.
_HANDSHAKE_TIMEOUT_S = 10.0

# 32 bits per pixel, depth 24, little-endian, true colour, 8 bits a channel.
_PIXEL_FORMAT = struct.pack(">BBBBHHHBBBxxx", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)

# Client-to-server messages: type -> bytes that follow the type byte (fixed part).
_SET_PIXEL_FORMAT, _SET_ENCODINGS, _UPDATE_REQUEST, _KEY, _POINTER, _CUT_TEXT = 0, 2, 3, 4, 5, 6


class FakeVncServer:
    """One guest's VNC server. ``start`` binds it; ``close`` drops it and its clients."""

    def __init__(self, name: str, *, width: int = 640, height: int = 480) -> None:
        self.name = name
        self.width = width
        self.height = height
        self.port: int | None = None
        self.connections = 0
        """Clients that connected (for tests)."""
        self.handshakes = 0
        """Clients that completed the RFB handshake (for tests)."""
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self, host: str = "127.0.0.1") -> int:
        self._server = await asyncio.start_server(self._serve, host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._clients):
            writer.close()
        self._clients.clear()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        self.connections += 1
        try:
            await asyncio.wait_for(self._handshake(reader, writer), _HANDSHAKE_TIMEOUT_S)
            self.handshakes += 1
            await self._messages(reader, writer)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass  # the client went away or spoke something else: just hang up
        finally:
            self._clients.discard(writer)
            writer.close()

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        await writer.drain()
        version = await reader.readexactly(12)
        if not version.startswith(b"RFB 003."):
            raise ValueError("not an RFB client")
        minor = int(version[8:11])
        if minor >= 7:
            writer.write(bytes([1, 1]))  # one security type: None
            await writer.drain()
            if (await reader.readexactly(1)) != b"\x01":
                raise ValueError("unsupported security type")
            if minor >= 8:
                writer.write(struct.pack(">I", 0))  # SecurityResult: OK
        else:  # 3.3: the server decides
            writer.write(struct.pack(">I", 1))
        await writer.drain()
        await reader.readexactly(1)  # ClientInit (shared flag)
        name = self.name.encode()
        writer.write(struct.pack(">HH", self.width, self.height) + _PIXEL_FORMAT
                     + struct.pack(">I", len(name)) + name)
        await writer.drain()

    async def _messages(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            kind = (await reader.readexactly(1))[0]
            if kind == _SET_PIXEL_FORMAT:
                await reader.readexactly(19)
            elif kind == _SET_ENCODINGS:
                _, count = struct.unpack(">BH", await reader.readexactly(3))
                await reader.readexactly(4 * count)
            elif kind == _UPDATE_REQUEST:
                incremental = (await reader.readexactly(9))[0]
                if not incremental:  # nothing ever changes: only a full request is answered
                    writer.write(struct.pack(">BxH", 0, 0))  # FramebufferUpdate, no rectangles
                    await writer.drain()
            elif kind == _KEY:
                await reader.readexactly(7)
            elif kind == _POINTER:
                await reader.readexactly(5)
            elif kind == _CUT_TEXT:
                _, length = struct.unpack(">3sI", await reader.readexactly(7))
                await reader.readexactly(length)
            else:
                raise ValueError(f"unknown RFB client message {kind}")
