"""Pacing by the rate-limit headers OpenAI-compatible servers send, before any 429.

OpenAI (and gateways, vLLM behind them, the simulator with a budget) answer with
`x-ratelimit-limit-*`, `x-ratelimit-remaining-*` and `x-ratelimit-reset-*` for requests and tokens
(the reset is a duration such as "1s", "6m0s", "120ms": the time until the budget is full again).
The budget refills continuously, so one answer's headers give both what is left and how fast it
comes back: (limit - remaining) / reset per second. Before each request the client spends its own
estimate (one request; the prompt's tokens plus `max_tokens` per generation, which is what servers
count on admission) and, when the estimate does not fit, waits for the refill instead of being
answered 429 and retrying.

An answer's figures are as of its admission, so they miss the requests sent since: the client keeps
the lower of its own running figure and the server's (the server's is lower when other clients
share the budget). Without headers nothing waits.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Union

__all__ = ["RateLimits", "estimate_tokens"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class _Budget:
    def __init__(self) -> None:
        self.level: Union[float, None] = None  # unknown until the server says
        self.limit: Union[float, None] = None
        self.rate: Union[float, None] = None  # refill per second
        self.full_at = 0.0  # without a refill rate: when the server said it would be full
        self.at = 0.0

    def now_level(self, now: float) -> Union[float, None]:
        if self.level is None:
            return None
        if self.rate is None:
            return None if now >= self.full_at else self.level
        level = self.level + self.rate * (now - self.at)
        return level if self.limit is None else min(self.limit, level)

    def wait(self, amount: float, now: float) -> float:
        level = self.now_level(now)
        if level is None or level >= amount or (self.limit is not None and amount > self.limit):
            return 0.0  # (a request larger than the whole budget goes, for the server to refuse)
        if self.rate:
            return (amount - level) / self.rate
        return max(0.0, self.full_at - now)

    def spend(self, amount: float, now: float) -> None:
        level = self.now_level(now)
        self.level = None if level is None else level - amount
        self.at = now

    def update(self, limit: Any, remaining: Any, reset: Any, now: float) -> None:
        remaining, seconds = _number(remaining), parse_duration(reset)
        if remaining is None or seconds is None:
            return
        limit = _number(limit)
        if limit is not None and limit > remaining and seconds > 0:
            self.limit, self.rate = limit, (limit - remaining) / seconds
        ours = self.now_level(now)
        self.level = remaining if ours is None else min(ours, remaining)
        self.at, self.full_at = now, now + seconds


class RateLimits:
    """One client's view of its server's per-minute budgets (one instance per event loop)."""

    def __init__(self) -> None:
        self.requests = _Budget()
        self.tokens = _Budget()
        self.waits = 0  # how often a request waited for the refill (for benchmarks and tests)

    async def take(self, tokens: int) -> None:
        """Wait until a request of about `tokens` fits the budgets, then spend it."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            wait = max(self.requests.wait(1, now), self.tokens.wait(tokens, now))
            if wait <= 0:
                self.requests.spend(1, now)
                self.tokens.spend(tokens, now)
                return
            self.waits += 1
            await asyncio.sleep(min(wait, 60.0))

    def update(self, headers: Any) -> None:
        """Read the x-ratelimit-* headers of an answer (a 429's too)."""
        if not headers:
            return
        now = asyncio.get_running_loop().time()
        for kind, budget in (("requests", self.requests), ("tokens", self.tokens)):
            remaining = headers.get(f"x-ratelimit-remaining-{kind}")
            if remaining is not None:
                budget.update(
                    headers.get(f"x-ratelimit-limit-{kind}"), remaining, headers.get(f"x-ratelimit-reset-{kind}"), now
                )


def _number(value: Any) -> Union[float, None]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_duration(text: Any) -> Union[float, None]:
    """Seconds in a Go-style duration ("1s", "6m0s", "120ms", "1h2m3.5s"); None if it is not one."""
    if not isinstance(text, str) or not text.strip():
        return None
    parts = _DURATION.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        try:
            return max(0.0, float(text))  # some servers send plain seconds
        except ValueError:
            return None
    return sum(float(n) * _UNIT[u] for n, u in parts)


def estimate_tokens(texts: list[str], max_tokens: Union[int, None], n: int) -> int:
    """What a server counts against its token budget on admission: the prompt, and the answer's cap."""
    prompt = sum(len(text) for text in texts) // 4 + 1  # about four characters a token
    return prompt + (max_tokens or 0) * max(1, n)
