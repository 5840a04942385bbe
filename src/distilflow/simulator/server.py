"""`Simulator`: the OpenAI-compatible app, served on loopback in a background thread."""

from __future__ import annotations

from typing import Any

from distilflow._serving import LoopbackServer, is_loopback

from .app import Sleeper, build_app, with_connection_control
from .config import SimulatorConfig
from .state import SimulatorState

__all__ = ["Simulator", "is_loopback"]


class Simulator(LoopbackServer):
    """An OpenAI-compatible HTTP server for tests, examples and benchmarks.

    >>> with Simulator(latency=0.01, fault_script=[429, "ok"]) as sim:
    ...     client = openai.OpenAI(base_url=sim.base_url, api_key="sim")

    Works from sync code and from inside a running asyncio loop alike, because
    the server never shares the caller's loop.
    """

    kind = "simulator"

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
        self._state = SimulatorState(config)
        self._sleeper = Sleeper()
        self.app = build_app(self._state, self._sleeper)
        super().__init__(with_connection_control(self.app), host, port, allow_non_loopback=allow_non_loopback,
                         on_stop=self._sleeper.wake_all)

    def start(self) -> Simulator:
        self._sleeper.closing = False
        return super().start()

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
        where = self.base_url if self.running else "stopped"
        return f"Simulator({where})"
