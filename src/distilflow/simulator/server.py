"""`Simulator`: runs the app with uvicorn on its own event loop in a background thread."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from typing import Any

import uvicorn

from .app import Sleeper, build_app, with_connection_control
from .config import SimulatorConfig
from .state import SimulatorState

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 15.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Simulator:
    """An OpenAI-compatible HTTP server for tests, examples and benchmarks.

    >>> with Simulator(latency=0.01, fault_script=[429, "ok"]) as sim:
    ...     client = openai.OpenAI(base_url=sim.base_url, api_key="sim")

    Works from sync code and from inside a running asyncio loop alike, because
    the server never shares the caller's loop.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_non_loopback: bool = False,
        **config_fields: Any,
    ) -> None:
        if config is None:
            config = SimulatorConfig(**config_fields)
        elif config_fields:
            config = config.updated(config_fields)
        if not allow_non_loopback and not is_loopback(host):
            raise ValueError(f"refusing to bind to non-loopback host {host!r} (pass allow_non_loopback=True)")
        self.host = host
        self._port = port
        self._state = SimulatorState(config)
        self._sleeper = Sleeper()
        self.app = build_app(self._state, self._sleeper)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> Simulator:
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        # Binding here (not in uvicorn) gives us the real port for port=0
        # before the thread starts and surfaces "address in use" synchronously.
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
        self._sleeper.closing = False
        self._error = None
        server = uvicorn.Server(
            uvicorn.Config(
                with_connection_control(self.app),
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
            target=self._run, args=(server, sock), name=f"distilflow-simulator:{self._port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"simulator failed to start: {self._error!r}")
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
        """Shut down; in-flight requests are answered immediately (sleeps are cut short)."""
        thread, server, loop = self._thread, self._server, self._loop
        if thread is None or server is None:
            return
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._sleeper.wake_all)
            except RuntimeError:  # loop already closed: the thread is finishing anyway
                pass
        server.should_exit = True
        thread.join(_STOP_TIMEOUT)
        if self._socket is not None:
            self._socket.close()
        self._thread = self._server = self._loop = self._socket = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> Simulator:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)

    # -- addresses -----------------------------------------------------------

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the port is chosen when the simulator starts")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    # -- control (direct state access; the /_sim/* routes do the same over HTTP)

    @property
    def config(self) -> SimulatorConfig:
        return self._state.config

    def stats(self) -> dict[str, Any]:
        return self._state.snapshot()

    def reset(self) -> None:
        """Zero the counters and restart the fault script (the config is kept)."""
        self._state.reset()

    def configure(self, **fields: Any) -> SimulatorConfig:
        """Change the config at runtime; raises pydantic.ValidationError on bad fields."""
        return self._state.update_config(fields)

    def __repr__(self) -> str:
        where = self.base_url if self._thread is not None else "stopped"
        return f"Simulator({where})"
