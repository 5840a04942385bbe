"""Adaptive concurrency: as many requests in flight as the server takes, and no more.

The limit is adjusted once per window of answers (at least 50, or one limit's worth):

* refused fraction above 30% (429/503): the server is over capacity. The limit drops by a
  quarter, and new requests wait for the longest Retry-After seen. (Not to the accepted share:
  refusals come back at once and cycle faster than answers, so that share underestimates.);
* below 15%: the server has room; the limit grows by a quarter (at least +1);
* in between: hold. Refusals that do not depend on load (a provider's random throttling) then
  cost a retry each, not the whole run's throughput, which a per-refusal halving (plain AIMD)
  would.

The limit stays within [floor, ceiling]. One instance serves one event loop (asyncio only).
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["AdaptiveLimit"]

OVERLOADED = 0.30
CALM = 0.15
DECREASE = 0.75
MIN_WINDOW = 50  # fewer answers make the refused share too noisy to act on


class AdaptiveLimit:
    def __init__(self, ceiling: int, floor: int = 1) -> None:
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self.limit = float(ceiling)
        self.in_flight = 0
        self.decreases = 0
        self._accepted = 0
        self._refused = 0
        self._longest_retry_after = 0.0
        self._paused_until = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def current(self) -> int:
        return max(self.floor, int(self.limit))

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            pause = self._paused_until - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            if self.in_flight < self.current:
                self.in_flight += 1
                return
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                # Cancelled (its batch failed) after `_wake` chose it: the slot it was woken for
                # must go to the next waiter, or with nothing else in flight nobody wakes them.
                if waiter.done() and not waiter.cancelled():
                    self._wake()
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def succeeded(self) -> None:
        self._accepted += 1
        self._adjust()

    def overloaded(self, retry_after: float | None) -> None:
        self._refused += 1
        self._longest_retry_after = max(self._longest_retry_after, retry_after or 0.0)
        self._adjust()

    def _adjust(self) -> None:
        answers = self._accepted + self._refused
        if answers < max(MIN_WINDOW, self.current):
            return
        refused = self._refused / answers
        if refused > OVERLOADED:
            self.limit = max(float(self.floor), self.limit * DECREASE)
            self.decreases += 1
            if self._longest_retry_after:
                self._paused_until = asyncio.get_running_loop().time() + self._longest_retry_after
        elif refused < CALM:
            self.limit = min(float(self.ceiling), max(self.limit * 1.25, self.limit + 1))
        self._accepted = self._refused = 0
        self._longest_retry_after = 0.0
        self._wake()

    def _wake(self) -> None:
        free = self.current - self.in_flight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1
