"""An ASGI app served by uvicorn on loopback, on its own event loop in a background thread.

What the model simulator and the Hub double share: they start from sync code and from inside a
running event loop alike (the server never shares the caller's loop), bind before the thread
starts (so port 0 gives the real port and "address in use" is raised at once), and refuse a
non-loopback host unless asked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from typing import Any, Callable, Union

import uvicorn

__all__ = ["LoopbackServer", "is_loopback", "serve_until_signalled"]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 15.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoopbackServer:
    """Serve `app` on `host:port` (0: any free port) until `stop()`; `on_stop` runs first (wake sleepers)."""

    kind = "server"

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, allow_non_loopback: bool = False,
                 on_stop: Union[Callable[[], None], None] = None) -> None:
        if not allow_non_loopback and not is_loopback(host):
            raise ValueError(f"refusing to bind to non-loopback host {host!r} (pass allow_non_loopback=True)")
        self.host, self._port, self._app, self._on_stop = host, port, app, on_stop
        self._server: Union[uvicorn.Server, None] = None
        self._thread: Union[threading.Thread, None] = None
        self._loop: Union[asyncio.AbstractEventLoop, None] = None
        self._socket: Union[socket.socket, None] = None
        self._error: Union[BaseException, None] = None

    def start(self) -> Any:
        if self._thread is not None:
            raise RuntimeError(f"{self.kind} already started")
        family, kind, proto, _, address = socket.getaddrinfo(self.host, self._port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self._port = sock.getsockname()[1]
        self._error = None
        server = uvicorn.Server(
            uvicorn.Config(
                self._app,
                log_config=None,  # never touch the host application's logging setup
                log_level="warning",
                access_log=False,
                lifespan="off",
                http="h11",
                ws="none",
                backlog=4096,  # bursts of thousands of concurrent connects
                timeout_graceful_shutdown=2,
            )
        )
        self._server = server
        self._thread = threading.Thread(
            target=self._run, args=(server, sock), name=f"distilflow-{self.kind}:{self._port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.kind} failed to start: {self._error!r}")
            time.sleep(0.002)
        return self

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        except BaseException as error:  # reported by start(); a thread cannot raise to us
            self._error = error
        finally:
            leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in leftovers:
                task.cancel()
            if leftovers:
                loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        thread, server, loop = self._thread, self._server, self._loop
        if thread is None or server is None:
            return
        if loop is not None and self._on_stop is not None:
            try:
                loop.call_soon_threadsafe(self._on_stop)
            except RuntimeError:  # loop already closed: the thread is finishing anyway
                pass
        server.should_exit = True
        thread.join(_STOP_TIMEOUT)
        if self._socket is not None:
            self._socket.close()
        self._thread = self._server = self._loop = self._socket = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> Any:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError(f"the port is chosen when the {self.kind} starts")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def serve_until_signalled(server: LoopbackServer, banner: str) -> int:
    """A command's body: start `server`, print `banner` (with `{url}`), serve until SIGINT or SIGTERM."""
    import signal
    import sys

    stop_requested = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop_requested.set())
    try:
        server.start()
    except OSError as error:
        print(f"error: cannot listen on {server.host}:{server._port}: {error}", file=sys.stderr)
        return 1
    print(banner.format(url=server.url), flush=True)
    try:
        while not stop_requested.wait(0.5):  # a wait with a timeout stays responsive to signals everywhere
            pass
    finally:
        server.stop()
    return 0
