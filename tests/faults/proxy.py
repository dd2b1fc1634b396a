"""A small TCP proxy with faults, for network fault tests (toxiproxy is not packaged here).

It runs its own asyncio loop in a thread, so tests can switch faults while their own loop
(and the worker processes behind the proxy) carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from typing import Literal

Mode = Literal["pass", "delay", "blackhole", "drop", "reset"]


class FaultyProxy:
    """127.0.0.1:<port> → upstream, in one of these modes:

    - ``pass``: bytes flow both ways;
    - ``delay``: each chunk waits ``delay_ms`` before it is forwarded;
    - ``blackhole``: connections stay open, bytes vanish (nothing forwarded or answered);
    - ``drop``: open connections are closed (FIN), new ones closed at once;
    - ``reset``: open connections are reset (RST), new ones reset at once.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode: Mode = "pass"
        self.delay_ms = 0.0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    def start(self) -> FaultyProxy:
        """Listen on a free port (``self.port``)."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(5)
        return self

    def stop(self) -> None:
        """Close everything and stop the thread."""
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def set(self, mode: Mode, delay_ms: float = 0.0) -> None:
        """Switch mode; ``drop`` and ``reset`` act on open connections at once."""
        asyncio.run_coroutine_threadsafe(self._set(mode, delay_ms), self._loop).result(5)

    @property
    def url_host(self) -> str:
        """host:port to give clients."""
        return f"127.0.0.1:{self.port}"

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for client, upstream in list(self._links):
            _kill(client, reset=False)
            _kill(upstream, reset=False)

    async def _set(self, mode: Mode, delay_ms: float) -> None:
        self.mode = mode
        self.delay_ms = delay_ms
        if mode in ("drop", "reset"):
            for client, upstream in list(self._links):
                _kill(client, reset=mode == "reset")
                _kill(upstream, reset=mode == "reset")
            self._links.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode in ("drop", "reset"):
            _kill(writer, reset=self.mode == "reset")
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _kill(writer, reset=True)
            return
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            self._links.discard(link)
            _kill(writer, reset=False)
            _kill(up_writer, reset=False)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await source.read(65536):
                if self.mode == "blackhole":
                    continue
                if self.mode == "delay" and self.delay_ms:
                    await asyncio.sleep(self.delay_ms / 1000)
                sink.write(chunk)
                await sink.drain()
        with contextlib.suppress(ConnectionError, OSError):
            sink.close()


def _kill(writer: asyncio.StreamWriter, *, reset: bool) -> None:
    """Close a connection; with ``reset`` an RST instead of a FIN (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    if reset and sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError, RuntimeError):
        writer.transport.abort() if reset else writer.close()
