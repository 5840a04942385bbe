"""Mutable simulator state: live config, counters and the fault schedule.

The server thread mutates it while the owning thread reads or reconfigures it
directly, hence the lock (uncontended, so cheap even at thousands of req/s).
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from .config import FAULT_FRACTIONS, PAYLOAD_FAULTS, SimulatorConfig
from .errors import openai_duration

ENDPOINTS = ("chat.completions", "completions", "images.generations")
#: Statuses whose answer carries Retry-After; a repeat of the same request before it is "early".
RETRY_AFTER_STATUSES = (429, 503)
# A retry may arrive this much before the deadline and still count as honouring it (clock
# granularity: the deadline is taken just before the answer is sent, so it is never late).
_RETRY_AFTER_SLACK = 0.001
# Refused request bodies remembered for early-retry detection, at most (oldest forgotten first).
_MAX_REMEMBERED_REFUSALS = 100_000

#: A fault decision: "ok", an HTTP status, or one of config.PAYLOAD_FAULTS.
Fault = int | str
#: Config fields that start the rate-limit budgets afresh (full) when changed.
BUDGET_FIELDS = ("requests_per_minute", "tokens_per_minute", "rate_limit_window")
# Float slack when comparing budget amounts (a bucket refilled to exactly the asked amount admits).
_BUDGET_EPSILON = 1e-9


@dataclass(frozen=True)
class BudgetRefusal:
    """Why a request was refused by its rate-limit budget (kind: "requests" or "tokens")."""

    kind: str
    limit: int
    used: int
    requested: int
    wait: float | None  # seconds until the budget covers the request; None: it never will


@dataclass(frozen=True)
class Admission:
    headers: dict[str, str]  # OpenAI's x-ratelimit-* headers, after this request
    refusal: BudgetRefusal | None = None


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
        self._faults: Counter[str] = Counter()
        self._early_retries = 0
        self._refused_until: dict[str, float] = {}  # request key -> when its Retry-After ends
        self._stragglers = 0
        self._rate_limited = 0
        self._refill_budgets_locked()

    def _refill_budgets_locked(self) -> None:
        # Each budget is a token bucket tracked as the amount used: it drains continuously at
        # limit / rate_limit_window per second, and a request fits if used + asked <= limit.
        self._budget_used = {"requests": 0.0, "tokens": 0.0}
        self._budget_at = time.monotonic()

    def reset(self) -> None:
        """Zero the counters, restart the fault script and the fault RNG, refill the budgets."""
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
            if any(name in fields for name in BUDGET_FIELDS):
                self._refill_budgets_locked()
            return new_config

    def refuse_over_quota(self, endpoint: str, key: str | None = None) -> None:
        """Count a request refused by the concurrency quota (no script entry or fault draw used)."""
        with self._lock:
            self._requests += 1
            self._by_endpoint[endpoint] += 1
            self._by_status["429"] += 1
            self._note_refusal_locked(key, self._config.retry_after)

    def admit(self, endpoint: str, key: str | None, tokens: int) -> Admission:
        """Take one request and ``tokens`` tokens from the rate-limit budgets, if both cover them.

        A refused request is counted (429, `rate_limited`) and consumes neither budget, no fault
        script entry and no fault draw; it is remembered for early-retry detection.
        """
        now = time.monotonic()
        with self._lock:
            config = self._config
            self._drain_budgets_locked(config, now)
            asked = {"requests": 1, "tokens": tokens}
            short: list[BudgetRefusal] = []
            for kind, limit in _budgets(config):
                used = self._budget_used[kind]
                if asked[kind] > limit:
                    wait = None
                elif used + asked[kind] > limit + _BUDGET_EPSILON:
                    wait = (used + asked[kind] - limit) * config.rate_limit_window / limit
                else:
                    continue
                short.append(BudgetRefusal(kind, limit, math.ceil(used - _BUDGET_EPSILON), asked[kind], wait))
            if not short:
                for kind, _ in _budgets(config):
                    self._budget_used[kind] += asked[kind]
                return Admission(self._rate_limit_headers_locked(config))
            too_large = [r for r in short if r.wait is None]
            # else the first budget short names the refusal, and its wait covers every budget
            refusal = too_large[0] if too_large else replace(
                short[0], wait=_whole_ms(max(r.wait for r in short if r.wait is not None))
            )
            self._requests += 1
            self._by_endpoint[endpoint] += 1
            self._by_status["429"] += 1
            self._rate_limited += 1
            if refusal.wait is not None:
                self._note_refusal_locked(key, refusal.wait)
            return Admission(self._rate_limit_headers_locked(config), refusal)

    def rate_limit_headers(self) -> dict[str, str]:
        """The x-ratelimit-* headers as of now, consuming nothing ({} without budgets)."""
        now = time.monotonic()
        with self._lock:
            self._drain_budgets_locked(self._config, now)
            return self._rate_limit_headers_locked(self._config)

    def _drain_budgets_locked(self, config: SimulatorConfig, now: float) -> None:
        elapsed = max(0.0, now - self._budget_at)
        self._budget_at = now
        for kind in self._budget_used:
            limit = getattr(config, f"{kind}_per_minute")
            refilled = elapsed * limit / config.rate_limit_window if limit is not None else math.inf
            self._budget_used[kind] = max(0.0, self._budget_used[kind] - refilled)

    def _rate_limit_headers_locked(self, config: SimulatorConfig) -> dict[str, str]:
        budgets = _budgets(config)
        # OpenAI's order: the limits, then what remains, then when each is back to full
        headers = {f"x-ratelimit-limit-{kind}": str(limit) for kind, limit in budgets}
        for kind, limit in budgets:
            remaining = math.floor(limit - self._budget_used[kind] + _BUDGET_EPSILON)
            headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, remaining))
        for kind, limit in budgets:
            refill = self._budget_used[kind] * config.rate_limit_window / limit
            headers[f"x-ratelimit-reset-{kind}"] = openai_duration(refill)
        return headers

    def request_delay(self, config: SimulatorConfig, sequence: int) -> float:
        """How long the request with this sequence number waits before it is answered.

        A straggler (its own draw under straggler_fraction) waits straggler_latency; any other
        request latency plus its jitter. The straggler draw is separate from the fault draws and
        the jitter, so seeded fault schedules and jitter do not change when stragglers are on.
        """
        fraction = config.straggler_fraction
        if fraction > 0 and straggler_unit(config.fault_seed, sequence) < fraction:
            with self._lock:
                self._stragglers += 1
            return config.straggler_latency
        return config.latency + config.latency_jitter * jitter_unit(config.fault_seed, sequence)

    def begin_refused(self, endpoint: str) -> int:
        """Count a request refused for its prompt (no script entry or fault draw used).

        Returns its sequence number, for the same deterministic jitter as any request.
        """
        with self._lock:
            self._requests += 1
            self._by_endpoint[endpoint] += 1
            return self._requests

    def arrived(self, key: str) -> None:
        """A model request with this key (a digest of its body) arrived: was it an early retry?

        A request byte-identical to one answered 429/503 with Retry-After, arriving before that
        delay has passed, is counted in `early_retries`: the client did not honour Retry-After.
        """
        now = time.monotonic()
        with self._lock:
            deadline = self._refused_until.pop(key, None)
            if deadline is not None and now < deadline - _RETRY_AFTER_SLACK:
                self._early_retries += 1

    def _note_refusal_locked(self, key: str | None, retry_after: float) -> None:
        if key is None or retry_after <= 0:
            return
        self._refused_until.pop(key, None)  # re-inserted last: the dict stays in deadline order
        self._refused_until[key] = time.monotonic() + retry_after
        if len(self._refused_until) > _MAX_REMEMBERED_REFUSALS:
            del self._refused_until[next(iter(self._refused_until))]

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
            if fault in PAYLOAD_FAULTS:
                self._faults[fault] += 1
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
        self,
        status: int,
        *,
        choices: int = 0,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        key: str | None = None,
        retry_after: float = 0.0,
    ) -> None:
        with self._lock:
            self._by_status[str(status)] += 1
            if status in RETRY_AFTER_STATUSES:
                self._note_refusal_locked(key, retry_after)
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
                # payload faults served (fault_script entries and fraction draws), by kind
                "faults": dict(sorted(self._faults.items())),
                # repeats of a 429/503-refused request sent before its Retry-After had passed
                "early_retries": self._early_retries,
                # requests that waited straggler_latency instead of latency + jitter
                "stragglers": self._stragglers,
                # 429s because the requests_per_minute / tokens_per_minute budget was spent
                # (random and scripted 429 faults and the concurrency quota are not counted here)
                "rate_limited": self._rate_limited,
            }


def jitter_unit(fault_seed: int, sequence: int) -> float:
    """A reproducible number in [0, 1) for the request with this sequence number."""
    return _unit("jitter", fault_seed, sequence)


def straggler_unit(fault_seed: int, sequence: int) -> float:
    """The straggler draw of the request with this sequence number: reproducible, in [0, 1),
    independent of its jitter and of the fault draws."""
    return _unit("straggler", fault_seed, sequence)


def _unit(purpose: str, fault_seed: int, sequence: int) -> float:
    digest = hashlib.sha256(f"{purpose}:{fault_seed}:{sequence}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def _budgets(config: SimulatorConfig) -> list[tuple[str, int]]:
    """The rate-limit budgets that are set, as (kind, limit)."""
    budgets = [("requests", config.requests_per_minute), ("tokens", config.tokens_per_minute)]
    return [(kind, limit) for kind, limit in budgets if limit is not None]


def _whole_ms(seconds: float) -> float:
    """Rounded up to a whole millisecond, so that waiting the advertised time is always enough."""
    return math.ceil(seconds * 1000 - 1e-6) / 1000
