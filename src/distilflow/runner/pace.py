"""Requests set the pace: new batches start while the model has idle request slots.

A batch counts as many outstanding requests as it has inputs; each input answered (from the
answer cache, or by the model, or failed) takes one off as it happens, told by the batch's answer
context. The runner starts the next batch whenever fewer requests are outstanding than the model
client may have in flight. So a batch held by one slow answer holds one slot, not a batch's worth,
and the others keep the model busy. Rows held in memory are capped separately.

Batches that run in another process (a Dask worker) cannot tell: they count until they end.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any, Union

__all__ = ["Pace", "progress_of"]

# The paces of runs in this process, by key, for the batches' answer contexts to find.
_PACES: dict[str, Pace] = {}
_LOCK = threading.Lock()


class Pace:
    def __init__(self, slots: int, wake: Callable[[], None]) -> None:
        self.slots = slots
        self.key = uuid.uuid4().hex
        self.outstanding = 0
        self._batches: dict[Any, int] = {}
        self._lock = threading.Lock()
        self._wake = wake  # called when slots free up (the runner may start a batch)

    def __enter__(self) -> Pace:
        with _LOCK:
            _PACES[self.key] = self
        return self

    def __exit__(self, *exc: Any) -> None:
        with _LOCK:
            _PACES.pop(self.key, None)

    @property
    def has_room(self) -> bool:
        return self.outstanding < self.slots

    def reserve(self, batch: Any, inputs: int) -> None:
        with self._lock:
            self._batches[batch] = inputs
            self.outstanding += inputs

    def answered(self, batch: Any, count: int) -> None:
        with self._lock:
            left = self._batches.get(batch, 0)
            done = min(count, left)  # a task may ask more than once per input (EvolInstruct)
            if not done:
                return
            self._batches[batch] = left - done
            was_full = self.outstanding >= self.slots
            self.outstanding -= done
            freed = was_full and self.outstanding < self.slots
        if freed:
            self._wake()

    def release(self, batch: Any) -> None:
        with self._lock:
            self.outstanding -= self._batches.pop(batch, 0)


def progress_of(key: Union[str, None], batch: Any) -> Union[Callable[[int], None], None]:
    """The callback through which a running batch reports answered inputs, if its run is in this process."""
    pace = _PACES.get(key) if key else None
    if pace is None:
        return None
    return lambda count: pace.answered(batch, count)
