"""The answer cache: each model answer kept under what was sent for it, and rows made from answers.

A request's key is a digest of what decides its answer, and of nothing else:

* the model's identity (`answer_identity()`: client class, model name, the settings that change
  answers, e.g. `model_revision`), never the client object, its key or the server's address;
* the formatted input exactly as the task built it (messages or prompt, structured-output schema),
  so a prompt held in a module constant, a helper, a file read at `load()` is in the key;
* `num_generations` (sent as `n`) and the generation settings after the client's defaults;
* the run's `cache_version`;
* for the k-th repeat (k > 0) of the same task input within one step, k: repeated inputs are
  sampled once each, as they would be without a cache, not answered once for all.

Answers are looked up before any request and each new answer is stored as soon as it arrives,
before its batch ends, so a run killed at any moment loses only the requests in flight. Rows are
always made from answers by the task's current code: editing `format_output` re-makes rows
without a request; editing anything that changes what is sent re-sends exactly what changed.

A request the server refuses for that input alone (400-class, or a transient failure that
outlasted every retry) becomes a `RowFailure` in place of its answer and is not stored, so a
later run asks again. A `ModelConfigurationError` (bad key, unknown model) is raised: no request
could succeed.

The runner sets an `AnswerContext` for each batch (`answering`); outside one, models are asked
directly and nothing is stored. This module knows no Prefect and no storage: a store is anything
with `get_many(keys)` and `put(key, answer)`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, Union

from distilflow._loop import run_sync
from distilflow.errors import ModelConfigurationError, ModelRequestError

__all__ = [
    "FLUSH_ANSWERS",
    "FLUSH_SECONDS",
    "MAX_BACKLOG",
    "AnswerContext",
    "AnswerStore",
    "RowFailure",
    "answer",
    "answering",
    "input_fingerprints",
    "occurrences",
    "request_key",
    "request_keys",
]

_log = logging.getLogger("distilflow.answers")
_current: ContextVar[Union[AnswerContext, None]] = ContextVar("distilflow_answer_context", default=None)


class AnswerStore(Protocol):
    """Where answers are kept (`distilflow.storage.answer_store` gives one for a local path or an s3:// URI)."""

    def get_many(self, keys: list[str]) -> dict[str, Any]: ...

    def put(self, key: str, answer: Any) -> None: ...

    def submit_many(self, items: list[tuple[str, Any]]) -> concurrent.futures.Future:
        """Store (key, answer) pairs without waiting; the future resolves once they are stored."""

    @property
    def backlog(self) -> int:
        """Answers submitted and not yet stored."""


@dataclass
class AnswerContext:
    """How one batch asks its model: where answers are kept, and what it has done so far."""

    store: Union[AnswerStore, None] = None
    version: str = ""
    refresh: bool = False  # ask again, replacing stored answers
    # False while the orchestrator can still retry the batch: a transient failure is then raised
    # (the retry re-sends only the unanswered requests); True: it becomes a failed row.
    final_attempt: bool = True
    prior: dict[int, int] = field(default_factory=dict)  # input fingerprint -> times seen in earlier batches
    seen: Counter = field(default_factory=Counter)
    cached: int = 0  # inputs answered from the store
    sent: int = 0  # inputs asked of the model
    failed: int = 0  # inputs whose request failed
    # told how many more of the batch's inputs have their answer (or their error), as they do:
    # the runner starts new batches while the model has idle request slots
    on_answered: Union[Callable[[int], None], None] = None
    # told how many requests are about to be sent, before they are (and may wait): a rate limit
    # shared by several workers (the runner's `rate_limit`)
    before_sending: Union[Callable[[int], None], None] = None

    def answered(self, count: int) -> None:
        if self.on_answered is not None and count:
            self.on_answered(count)


@contextmanager
def answering(context: AnswerContext) -> Iterator[AnswerContext]:
    """Within this block, tasks on this thread ask their models through `context`."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


@dataclass(frozen=True)
class RowFailure:
    """A request that failed for its input alone; the row keeps the error instead of an answer."""

    status_code: Union[int, None]
    code: Union[str, None]
    message: str

    @classmethod
    def of(cls, error: ModelRequestError) -> RowFailure:
        return cls(error.status_code, error.code, error.server_message or str(error))

    def metadata(self) -> dict[str, Any]:
        return {"status_code": self.status_code, "code": self.code, "message": self.message}

    def reason(self) -> str:
        """"HTTP 400 context_length_exceeded: This model's maximum ..." (the kind comes first)."""
        kind = " ".join(str(p) for p in (f"HTTP {self.status_code}" if self.status_code else None, self.code) if p)
        return f"{kind or 'RequestFailed'}: {self.message}"


def answer(
    llm: Any,
    inputs: list[Any],
    num_generations: int,
    kwargs: dict[str, Any],
    *,
    occurrences: Union[list[int], None] = None,
    row_failures: bool = False,
) -> list[Any]:
    """Each input's answer, from the store when it holds one, else from `llm` (then stored).

    With `row_failures`, an input whose request failed gets a `RowFailure` in its place;
    without, the first failure is raised (distilabel's `generate_outputs` contract).
    """
    context = _current.get()
    store = context.store if context is not None else None
    if store is None and not row_failures:
        return llm.generate_checked(inputs, num_generations, **kwargs)
    results: list[Any] = [None] * len(inputs)
    todo = list(range(len(inputs)))
    keys: list[str] = []
    if store is not None:
        identity, settings = llm.answer_identity(), llm.generation_settings(kwargs)
        repeats = occurrences if occurrences is not None else _repeats(inputs)
        keys = request_keys(identity, inputs, num_generations, settings, repeats, context.version)
        if not context.refresh:
            stored = store.get_many(list(dict.fromkeys(keys)))
            for i, key in enumerate(keys):
                if key in stored and llm.is_answer(stored[key], num_generations):
                    results[i] = stored[key]
            todo = [i for i in todo if results[i] is None]
            context.cached += len(inputs) - len(todo)
            context.answered(len(inputs) - len(todo))
    if todo:
        if context is not None and context.before_sending is not None:
            context.before_sending(len(todo))
        fresh = _ask(
            llm, [inputs[i] for i in todo], num_generations, kwargs, store, [keys[i] for i in todo] if keys else [],
            context.answered if context is not None else None,
        )
        for i, result in zip(todo, fresh):
            results[i] = result
        if context is not None:
            context.sent += len(todo)
    errors = [r for r in results if isinstance(r, ModelRequestError)]
    if not errors:
        return results
    transient = [e for e in errors if e.transient]
    if not row_failures or (transient and context is not None and not context.final_attempt):
        raise (transient or errors)[0]
    if context is not None:
        context.failed += len(errors)
    return [RowFailure.of(r) if isinstance(r, ModelRequestError) else r for r in results]


def _ask(
    llm: Any, inputs: list[Any], n: int, kwargs: dict[str, Any], store: Any, keys: list[str],
    answered: Union[Callable[[int], None], None] = None,
) -> list[Any]:
    """Answers (or request errors) from the model, stored as they arrive (a write every few dozen ms)."""
    if hasattr(llm, "agenerate_each"):

        async def ask() -> list[Any]:
            keeper = _Keeper(store, asyncio.get_running_loop()) if store is not None else None

            async def keep(index: int, output: Any) -> None:
                if answered is not None:
                    answered(1)
                if isinstance(output, ModelRequestError):
                    return
                _check(llm, output, n)
                if keeper is not None:
                    await keeper.add(keys[index], output)

            try:
                results = await llm.agenerate_each(inputs, n, on_answer=keep, **kwargs)
            except BaseException:
                if keeper is not None:  # keep what was paid for, then fail
                    with contextlib.suppress(Exception):
                        await keeper.stored()
                raise
            if keeper is not None:
                await keeper.stored()  # a finished batch's answers are all stored
            return results

        return run_sync(ask())
    try:
        outputs = llm.generate_checked(inputs, n, **kwargs)
    except ModelConfigurationError:
        raise
    except ModelRequestError as e:  # a sync client answers for the whole call: every input failed
        outputs = [e] * len(inputs)
    finally:
        if answered is not None:
            answered(len(inputs))
    if outputs and isinstance(outputs[0], ModelRequestError):
        return outputs
    if store is not None:
        store.submit_many(list(zip(keys, outputs))).result()
    return outputs


#: A batch's answers go to the store together, at most this long (or this many) after the first.
FLUSH_SECONDS = 0.05
FLUSH_ANSWERS = 64
#: While more answers than this wait for the store's writer (a slow object store), requests keep
#: their slots: asking waits for storing. So a killed run loses at most the requests in flight,
#: FLUSH_ANSWERS and MAX_BACKLOG answers.
MAX_BACKLOG = 64


class _Keeper:
    """One batch's answers on their way to the store, a write every FLUSH_SECONDS or FLUSH_ANSWERS.

    Writing each answer on its own would cost a thread hand-off (and a commit) per answer, the
    largest cost of a run at a few hundred answers a second.
    """

    def __init__(self, store: AnswerStore, loop: asyncio.AbstractEventLoop) -> None:
        self.store, self.loop = store, loop
        self.pending: list[tuple[str, Any]] = []
        self.writes: list[concurrent.futures.Future] = []
        self.timer: Union[asyncio.TimerHandle, None] = None

    async def add(self, key: str, answer: Any) -> None:
        self.pending.append((key, answer))
        if len(self.pending) >= FLUSH_ANSWERS:
            self.flush()
        elif self.timer is None:
            self.timer = self.loop.call_later(FLUSH_SECONDS, self.flush)
        while self.store.backlog > MAX_BACKLOG:
            await asyncio.sleep(0.01)

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.pending:
            self.writes.append(self.store.submit_many(self.pending))
            self.pending = []

    async def stored(self) -> None:
        """Once every answer added is stored; raises the store's error if a write failed."""
        self.flush()
        for write in self.writes:
            await asyncio.wrap_future(write)


def _check(llm: Any, output: Any, n: int) -> None:
    if not llm.is_answer(output, n):
        raise RuntimeError(
            f"{type(llm).__name__}.agenerate must return one input's answer with {n} generation(s); "
            f"got {output!r:.300}"
        )


# -- keys ----------------------------------------------------------------------------------------


def request_key(
    identity: dict[str, Any], input: Any, num_generations: int, settings: dict[str, Any], repeat: int, version: str
) -> str:
    """The answer-cache key of one request (a sha256 hex digest)."""
    return request_keys(identity, [input], num_generations, settings, [repeat], version)[0]


def request_keys(
    identity: dict[str, Any], inputs: list[Any], num_generations: int, settings: dict[str, Any],
    repeats: list[int], version: str,
) -> list[str]:
    """The keys of many requests to one model with the same settings (their common part digested once)."""
    common = hashlib.sha256(
        _canonical({"model": identity, "n": num_generations, "settings": settings, "version": version}).encode()
    )
    keys = []
    for item, repeat in zip(inputs, repeats):
        digest = common.copy()
        digest.update(b"\0" + _canonical(item).encode())
        if repeat:
            digest.update(b"\0repeat %d" % repeat)
        keys.append(digest.hexdigest())
    return keys


def input_fingerprints(task: Any, rows: list[dict[str, Any]]) -> list[int]:
    """A 64-bit digest of the task's input columns in each row (the task's view, after mappings)."""
    columns = list(task._declared_inputs())
    return [
        int.from_bytes(hashlib.blake2b(_canonical([row.get(c) for c in columns]).encode(), digest_size=8).digest(), "big")
        for row in rows
    ]


def occurrences(task: Any, rows: list[dict[str, Any]]) -> Union[list[int], None]:
    """For each row, how many rows before it in the step had the same task input (None: no cache)."""
    context = _current.get()
    if context is None or context.store is None:
        return None
    counts = []
    for fingerprint in input_fingerprints(task, rows):
        counts.append(context.prior.get(fingerprint, 0) + context.seen[fingerprint])
        context.seen[fingerprint] += 1
    return counts


def _repeats(inputs: list[Any]) -> list[int]:
    seen: Counter = Counter()
    repeats = []
    for item in inputs:
        text = _canonical(item)
        repeats.append(seen[text])
        seen[text] += 1
    return repeats


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_jsonable)


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _jsonable(value: Any) -> Any:
    """Values JSON does not know, as stable data (a key must not change from one run to the next)."""
    from pydantic import BaseModel

    if isinstance(value, type) and issubclass(value, BaseModel):  # a structured-output schema class
        return {"json_schema": value.model_json_schema()}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (bytes, bytearray)):
        return {"sha256": hashlib.sha256(value).hexdigest()}
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if hasattr(value, "tobytes"):  # PIL images, numpy arrays: their content
        return {"sha256": hashlib.sha256(value.tobytes()).hexdigest()}
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    return _ADDRESS.sub("", repr(value))
