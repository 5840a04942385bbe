"""Pacing by the rate-limit headers OpenAI-compatible servers send, before any 429.

OpenAI (and gateways, vLLM behind them, the simulator with a budget) answer with
`x-ratelimit-remaining-requests` / `-tokens` and `x-ratelimit-reset-requests` / `-tokens` (a
duration such as "1s", "6m0s", "120ms"). A client that reads them knows its budget for the minute:
when a request would need more than is left, it waits for the reset instead of being answered 429
and retrying. Between answers the client spends its own estimate (a request, and the prompt's
tokens plus `max_tokens` per generation, as servers admit requests), and each answer's headers set
the figures again. Without headers nothing waits.
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
        self.remaining: Union[float, None] = None  # unknown until the server says
        self.reset_at = 0.0

    def wait(self, amount: float, now: float) -> float:
        if self.remaining is None or self.remaining >= amount or now >= self.reset_at:
            return 0.0
        return self.reset_at - now

    def spend(self, amount: float, now: float) -> None:
        if self.remaining is not None:
            if now >= self.reset_at:  # the window has passed: the server refilled it
                self.remaining = None
            else:
                self.remaining -= amount

    def update(self, remaining: Any, reset: Any, now: float) -> None:
        try:
            value = float(remaining)
        except (TypeError, ValueError):
            return
        seconds = parse_duration(reset)
        if seconds is None:
            return
        self.remaining, self.reset_at = value, now + seconds


class RateLimits:
    """One client's view of its server's per-minute budgets (one instance per event loop)."""

    def __init__(self) -> None:
        self.requests = _Budget()
        self.tokens = _Budget()
        self.waits = 0  # how often a request waited for a reset (for benchmarks and tests)

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
        get = headers.get
        if get("x-ratelimit-remaining-requests") is not None:
            self.requests.update(get("x-ratelimit-remaining-requests"), get("x-ratelimit-reset-requests"), now)
        if get("x-ratelimit-remaining-tokens") is not None:
            self.tokens.update(get("x-ratelimit-remaining-tokens"), get("x-ratelimit-reset-tokens"), now)


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
