"""The rows a step without a model made, kept so a re-run gets the very same rows (distilabel's step cache).

Most such steps are deterministic and cheap, but not all: a step that samples, shuffles or stamps
rows makes different rows on a re-run, and every task after it would then send new requests
(and buy new answers). So a step's batch is kept in the run's answer store under a key made of
what decides its rows:

* the step's code (the source of its class, or of the `@step` function) and its settings
  (everything but its name, batch size and resources);
* the batch (step and batch number: a step that counts its rows, or keeps state from batch to
  batch, makes different rows of equal inputs) and its input rows;
* the run's `cache_version`.

Editing the step's code or settings, or its input rows, makes a new key. Loaders are not kept
(they read their files again: a changed file is read as it is now). `use_cache=False` on the step,
or `pipeline.run(use_cache=False)`, makes the rows again; a batch with failed rows is not kept.
Rows that are not JSON values (an image object, bytes) are not kept either: the step runs again.
"""

from __future__ import annotations

import hashlib
import inspect
import threading
from typing import Any, Union

import orjson

from distilflow.steps.base import GeneratorStep, GlobalStep, Step, _Step

__all__ = ["step_batch_key"]

_FRAMEWORK = (_Step, Step, GlobalStep, GeneratorStep)
_sources: dict[type, list[str]] = {}
_sources_lock = threading.Lock()
_NOT_IN_KEY = {"name", "pipeline", "input_batch_size", "batch_size", "resources", "use_cache"}


def step_batch_key(step: _Step, batch: str, inputs: list[list[dict[str, Any]]], version: str) -> Union[str, None]:
    """The key of this batch's rows, or None when they cannot be kept (inputs that are not JSON)."""
    try:
        payload = orjson.dumps(
            {"kind": "step rows", "step": _identity(step), "batch": batch, "inputs": inputs, "version": version},
            option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
        )
    except TypeError:
        return None
    return hashlib.sha256(payload).hexdigest()


def _identity(step: _Step) -> dict[str, Any]:
    kind = type(step)
    return {"class": f"{kind.__module__}.{kind.__qualname__}", "code": _code(kind), "settings": _settings(step)}


def _code(kind: type) -> list[str]:
    # found once per class, one thread at a time: `inspect.getsource` parses the module, and
    # parsing from several batch threads at once fails on Python 3.11
    with _sources_lock:
        if kind not in _sources:
            _sources[kind] = _read_code(kind)
        return _sources[kind]


def _read_code(kind: type) -> list[str]:
    function = getattr(kind, "_step_function", None)  # a `@step` class: its function is the code
    owners = [function] if function is not None else [c for c in kind.__mro__ if issubclass(c, _Step) and c not in _FRAMEWORK]
    sources = []
    for owner in owners:
        try:
            sources.append(inspect.getsource(owner))
        except (OSError, TypeError):  # defined where no source is kept (a REPL): its name stands in
            sources.append(f"{owner.__module__}.{owner.__qualname__}")
    return sources


def _settings(step: _Step) -> Any:
    try:
        return orjson.loads(orjson.dumps(step.model_dump(mode="json", exclude=_NOT_IN_KEY),
                                         option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY))
    except Exception:  # noqa: BLE001 - a setting pydantic cannot dump: its repr stands in
        return repr({name: getattr(step, name, None) for name in type(step).model_fields if name not in _NOT_IN_KEY})
