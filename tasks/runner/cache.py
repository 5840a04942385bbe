"""The cache key of a batch: an explicit step identity plus the batch's rows.

Prefect's default policy includes the flow run id (no hits across runs); `INPUTS` would hash the
model client (its connection pool, its key); `TASK_SOURCE` is the same for every task built by
one wrapper. So the key is built from what decides the answers and nothing else:

* the task's class (module, name, and the source of its code when available), its `name`, and its
  settings (prompts, templates, columns, num_generations, group_generations, mappings, ...);
* the model's class, `model_name` and generation settings (never its key or its connection);
* a version string the user bumps to invalidate everything;
* the rows of the batch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from prefect.cache_policies import CachePolicy

from tasks.base import _Task

__all__ = ["StepCachePolicy", "step_identity"]

# Settings that change how rows are cut or shown, not what the model answers.
_NOT_IDENTITY = {"llm", "image_generation_model", "input_batch_size"}
# Client settings that are about transport, not about the answers.
_CLIENT_TRANSPORT = {
    "api_key", "base_url", "timeout", "max_retries", "retry_backoff", "retry_max_delay",
    "max_concurrent_requests", "min_concurrent_requests",
}


def step_identity(task: _Task, version: str = "") -> dict[str, Any]:
    """What identifies a step's answers, as plain JSON-able data (no secrets, no clients)."""
    cls = type(task)
    settings = task.model_dump(mode="json", exclude=_NOT_IDENTITY)
    llm = task.llm
    model = {
        "class": f"{type(llm).__module__}.{type(llm).__qualname__}",
        "model_name": llm.model_name,
        "settings": llm.model_dump(mode="json", exclude=_CLIENT_TRANSPORT),
    }
    return {
        "task": f"{cls.__module__}.{cls.__qualname__}",
        "code": _code_digest(cls),
        "settings": settings,
        "model": model,
        "version": version,
    }


def _code_digest(cls: type) -> str:
    """A digest of the task's own code and class-level prompts: editing `format_input` re-runs.

    Built from bytecode, not source: `inspect.getsource` parses with `ast`, which races with other
    threads compiling code on CPython 3.11 (SystemError), and bytecode ignores moved lines.
    """
    parts: list[Any] = []
    for klass in cls.__mro__:
        # the framework's own base classes are not the step's code; refactoring them keeps caches
        if klass.__module__.startswith(("pydantic", "builtins", "abc", "typing", "tasks.base")):
            continue
        for name, value in sorted(vars(klass).items()):
            if isinstance(value, str) and not name.startswith("__"):
                parts.append((name, value))
            else:
                code = _code_of(value)
                if code is not None:
                    parts.append((name, _fingerprint(code)))
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _code_of(value: Any) -> Any:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        value = value.fget
    return getattr(value, "__code__", None)


def _fingerprint(code: Any) -> tuple:
    consts = tuple(_fingerprint(c) if hasattr(c, "co_code") else repr(c) for c in code.co_consts)
    return (code.co_code, code.co_names, code.co_varnames, consts)


def digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=_fallback_json).encode()).hexdigest()


def _fallback_json(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return hashlib.sha256(value).hexdigest()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if hasattr(value, "tobytes"):  # PIL images, numpy arrays: hash the content, not the repr
        return hashlib.sha256(value.tobytes()).hexdigest()
    return repr(value)


@dataclass
class StepCachePolicy(CachePolicy):
    """Key = digest(step identity, batch rows). The identity is computed once per step."""

    identity: str = ""

    def compute_key(self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any) -> str:
        return f"distilflow-{digest([self.identity, inputs['rows']])}"
