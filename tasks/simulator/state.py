"""Mutable simulator state: live config, counters and the fault schedule.

The server thread mutates it while the owning thread reads or reconfigures it
directly, hence the lock (uncontended, so cheap even at thousands of req/s).
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter
from typing import Any

from .config import FAULT_FRACTIONS, SimulatorConfig

ENDPOINTS = ("chat.completions", "completions", "images.generations")

#: A fault decision: "ok", an HTTP status, or one of config.PAYLOAD_FAULTS.
Fault = int | str


class SimulatorState:
    def __init__(self, config: SimulatorConfig) -> None:
        self._lock = threading.Lock()
        self._config = config
        self._reset_locked()

    @property
    def config(self) -> SimulatorConfig:
        return self._config

    def _reset_locked(self) -> None:
        self._requests = 0
        self._by_endpoint = Counter({name: 0 for name in ENDPOINTS})
        self._by_status: Counter[str] = Counter()
        self._choices = 0
        self._prompt_tokens = 0
        self._completion_tokens = 0
        self._script_position = 0
        self._fault_rng = random.Random(self._config.fault_seed)
        self._peak_in_flight = getattr(self, "_in_flight", 0)
        self._in_flight = getattr(self, "_in_flight", 0)

    def reset(self) -> None:
        """Zero the counters and restart the fault script and the fault RNG."""
        with self._lock:
            self._reset_locked()

    def update_config(self, fields: dict[str, Any]) -> SimulatorConfig:
        """Validate and apply a partial update; raises pydantic.ValidationError."""
        with self._lock:
            new_config = self._config.updated(fields)
            self._config = new_config
            # A new script or seed means "start this schedule now", not mid-way.
            if "fault_script" in fields:
                self._script_position = 0
            if "fault_seed" in fields:
                self._fault_rng = random.Random(new_config.fault_seed)
            return new_config

    def refuse_over_quota(self, endpoint: str) -> None:
        """Count a request refused by the concurrency quota (no script entry or fault draw used)."""
        with self._lock:
            self._requests += 1
            self._by_endpoint[endpoint] += 1
            self._by_status["429"] += 1

    def begin_request(self, endpoint: str) -> tuple[SimulatorConfig, Fault, int]:
        """Count a model request and decide its fault.

        Returns the config snapshot the request should use throughout, the fault
        and the request's sequence number (used for deterministic jitter).
        """
        with self._lock:
            config = self._config
            self._requests += 1
            self._by_endpoint[endpoint] += 1
            sequence = self._requests
            if self._script_position < len(config.fault_script):
                fault: Fault = config.fault_script[self._script_position]
                self._script_position += 1
            else:
                fault = self._draw_fault(config)
        return config, ("ok" if fault == 200 else fault), sequence

    def _draw_fault(self, config: SimulatorConfig) -> Fault:
        # Exactly one draw per request, even with all fractions at zero, so that
        # turning faults on mid-run does not shift the sequence for later requests.
        draw = self._fault_rng.random()
        threshold = 0.0
        for field, fault in FAULT_FRACTIONS.items():
            threshold += getattr(config, field)
            if draw < threshold:
                return fault
        return "ok"

    def record_response(
        self, status: int, *, choices: int = 0, prompt_tokens: int = 0, completion_tokens: int = 0
    ) -> None:
        with self._lock:
            self._by_status[str(status)] += 1
            self._choices += choices
            self._prompt_tokens += prompt_tokens
            self._completion_tokens += completion_tokens

    def enter(self) -> bool:
        """A model request is being handled (the peak shows a client's real concurrency).

        False when the concurrency quota is full: the request is refused, not counted in flight.
        """
        with self._lock:
            quota = self._config.max_concurrent_requests
            if quota is not None and self._in_flight >= quota:
                return False
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
            return True

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "in_flight": self._in_flight,
                "max_in_flight": self._peak_in_flight,
                "requests": self._requests,
                "by_endpoint": dict(self._by_endpoint),
                "by_status": dict(sorted(self._by_status.items())),
                "choices": self._choices,
                "prompt_tokens": self._prompt_tokens,
                "completion_tokens": self._completion_tokens,
            }


def jitter_unit(fault_seed: int, sequence: int) -> float:
    """A reproducible number in [0, 1) for the request with this sequence number."""
    digest = hashlib.sha256(f"jitter:{fault_seed}:{sequence}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32
