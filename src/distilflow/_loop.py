"""The one event loop that sync callers use to drive async model clients.

`run_sync` runs a coroutine on a process-wide loop living in a daemon thread and blocks the
calling thread until it finishes. It therefore works the same from plain scripts, from threads
(Prefect's sync task runs) and from code that already runs inside an event loop (notebooks,
async Prefect tasks), without nesting loops. Async clients keep one connection pool per loop,
so requests from many threads share this loop's pool and its concurrency limits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
# what run_sync callers are waiting for, so a stopping run can cancel them all (`cancel_all`)
_running: set[concurrent.futures.Future] = set()


def _shared_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed() or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="distilflow-loop", daemon=True)
            thread.start()
            _loop, _thread = loop, thread
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on distilflow's loop and return its result (re-raising its exception)."""
    loop = _shared_loop()
    if threading.current_thread() is _thread:
        coro.close()
        raise RuntimeError(
            "A sync distilflow call was made from inside distilflow's own event loop; "
            "await the async method (e.g. `agenerate`) instead."
        )
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    with _lock:
        _running.add(future)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise
    finally:
        with _lock:
            _running.discard(future)


def cancel_all() -> int:
    """Cancel every call waiting in `run_sync` (their callers get CancelledError); how many.

    A run that stops (SIGINT, SIGTERM, its scheduler failing) calls this: Prefect's task runner
    waits for every running batch before the process can end, and a batch waiting out a model
    server's outage would hold that for minutes. Answers received are kept: a cancelled batch
    stores what it has before it ends (see `distilflow.answers`).
    """
    with _lock:
        waiting = list(_running)
    for future in waiting:
        future.cancel()
    return len(waiting)


class PerLoop:
    """Lazily built objects bound to the running event loop (clients, semaphores).

    asyncio primitives and HTTP connection pools belong to one loop; keeping one per loop lets
    the same model object be awaited from the shared loop and from a caller's own loop.
    """

    def __init__(self) -> None:
        self._items: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}

    def get(self, factory):
        loop = asyncio.get_running_loop()
        entry = self._items.get(id(loop))
        if entry is None or entry[0] is not loop:
            self._items = {k: v for k, v in self._items.items() if not v[0].is_closed()}
            entry = (loop, factory())
            self._items[id(loop)] = entry
        return entry[1]

    def items(self) -> list[tuple[asyncio.AbstractEventLoop, Any]]:
        return list(self._items.values())

    def clear(self) -> None:
        self._items.clear()
