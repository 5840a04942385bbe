"""One batch of a step without a model (a loader's batch, a column step, a global step) as a Prefect task run.

Tasks' batches go through `batch.py` (the answer cache, request pacing, named states). A step
without a model has no answers to keep, but its rows are kept in the answer store, so a re-run
gets the very rows the first run made, as distilabel's cache gives (see `step_cache.py`). Its
state says the shape, as a task's does, and the rows that failed when `process` raised.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Union

from prefect import Task as PrefectTask
from prefect import task as prefect_task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State

from distilflow.answers import RowFailure
from distilflow.constants import DISTILABEL_METADATA_KEY
from distilflow.errors import DistilflowUserError
from distilflow.runner.batch import FAILED_ROWS_STATE_NAME, AnswerSettings, BatchOutput, Opaque
from distilflow.runner.report import RowCounts, _reason_kind, _shape, clip, failure_message
from distilflow.runner.step_cache import step_batch_key
from distilflow.steps.base import _Step
from distilflow.steps.tasks.base import FAILURE_KEY_PREFIX

__all__ = ["execute_step_batch", "step_task_for"]

_log = logging.getLogger("distilflow.runner")


def execute_step_batch(step: _Step, inputs: list[list[dict[str, Any]]]) -> BatchOutput:
    """The rows `step` makes of one batch: one list of rows per predecessor (a loader's rows as they are).

    When `process` raises, the batch's rows go on with the step's outputs set to None and the error
    in their `distilabel_metadata` (distilabel goes on the same way): the batch completes as
    `CompletedWithFailedRows`, counted in the run's summary. A global step's error, which concerns
    every row, fails the batch.
    """
    if step.is_generator:
        rows = inputs[0]
    else:
        try:
            rows = [row for out in step.process_applying_mappings(*inputs) for row in out]
        except DistilflowUserError:
            raise
        except Exception as error:  # noqa: BLE001 - the user's step code: any error is the rows'
            if step.is_global:
                raise
            return _failed_rows(step, inputs, error)
    return BatchOutput(rows, RowCounts(rows=len(rows)))


def _failed_rows(step: _Step, inputs: list[list[dict[str, Any]]], error: Exception) -> BatchOutput:
    reason = f"{type(error).__name__}: {error}"
    _log.warning("Step '%s' failed on a batch of %d rows (%s); they go on with its outputs set to None.",
                 step.name, len(inputs[0]) if inputs else 0, clip(reason, 300))
    failure = RowFailure(None, type(error).__name__, str(error))
    rows = []
    for row in inputs[0] if inputs else []:
        existing = row.get(DISTILABEL_METADATA_KEY)
        metadata = dict(existing) if isinstance(existing, dict) else {}
        metadata[f"{FAILURE_KEY_PREFIX}{step.name}"] = failure.metadata()
        rows.append({**row, **dict.fromkeys(step.get_outputs()), DISTILABEL_METADATA_KEY: metadata})
    counts = RowCounts(
        rows=len(rows), failed_rows=len(rows), failure_reasons=Counter({_reason_kind(failure.reason()): len(rows)}),
        failure_examples=[(j, failure.reason()) for j in range(min(len(rows), 5))],
    )
    return BatchOutput(rows, counts)


def run_step_batch(
    step: Union[_Step, Opaque], inputs: Union[list, Opaque], label: str, answers: Union[AnswerSettings, None] = None
) -> State:
    step = step.value if isinstance(step, Opaque) else step
    inputs = inputs.value if isinstance(inputs, Opaque) else inputs
    key = store = None
    if answers is not None and step.use_cache and not step.is_generator:
        key = step_batch_key(step, label, inputs, answers.version)
    if key is not None:
        from distilflow.storage import answer_store

        store = answer_store(answers.location)
        kept = None if answers.refresh else store.get_many([key]).get(key)
        if isinstance(kept, list):
            output = BatchOutput(kept, RowCounts(rows=len(kept)))
            return Completed(name="Cached", message=f"{_shape_of(step, inputs, kept)}; the rows kept from an earlier run",
                             data=output)
    output = execute_step_batch(step, inputs)
    if store is not None and not output.counts.failed_rows:
        try:
            store.put(key, output.rows)
        except (TypeError, ValueError):  # rows that are not JSON values: not kept, made again next time
            pass
    message = _shape_of(step, inputs, output.rows)
    if output.counts.failed_rows:
        return Completed(name=FAILED_ROWS_STATE_NAME, message=f"{failure_message(output.counts)}; {message}", data=output)
    return Completed(message=message, data=output)


def _shape_of(step: _Step, inputs: list[list[dict[str, Any]]], rows: list[dict[str, Any]]) -> str:
    return f"{len(rows)} rows" if step.is_generator else _shape(sum(len(part) for part in inputs), len(rows), False, 1)


_step_batch = prefect_task(run_step_batch, name="distilflow-step", task_run_name="{label}")


def step_task_for(step: _Step) -> PrefectTask:
    """The Prefect task that runs `step`'s batches (no retries: nothing here is transient)."""
    return _step_batch.with_options(name=step.name, cache_policy=NO_CACHE, persist_result=False)
