"""One batch of a step without a model (a loader's batch, a column step, a global step) as a Prefect task run.

Tasks' batches go through `batch.py` (the answer cache, request pacing, named states). A step
without a model has nothing to cache: its batch is its rows, made again on a re-run (column and
formatting steps cost microseconds a row). Its state says the shape, as a task's does.
"""

from __future__ import annotations

from typing import Any, Union

from prefect import Task as PrefectTask
from prefect import task as prefect_task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State

from distilflow.runner.batch import BatchOutput, Opaque
from distilflow.runner.report import RowCounts, _shape
from distilflow.steps.base import _Step

__all__ = ["execute_step_batch", "step_task_for"]


def execute_step_batch(step: _Step, inputs: list[list[dict[str, Any]]]) -> BatchOutput:
    """The rows `step` makes of one batch: one list of rows per predecessor (a loader's rows as they are)."""
    if step.is_generator:
        rows = inputs[0]
    else:
        rows = [row for out in step.process_applying_mappings(*inputs) for row in out]
    return BatchOutput(rows, RowCounts(rows=len(rows)))


def run_step_batch(step: Union[_Step, Opaque], inputs: Union[list, Opaque], label: str) -> State:
    step = step.value if isinstance(step, Opaque) else step
    inputs = inputs.value if isinstance(inputs, Opaque) else inputs
    output = execute_step_batch(step, inputs)
    message = (f"{len(output.rows)} rows" if step.is_generator
               else _shape(sum(len(rows) for rows in inputs), len(output.rows), False, 1))
    return Completed(message=message, data=output)


_step_batch = prefect_task(run_step_batch, name="distilflow-step", task_run_name="{label}")


def step_task_for(step: _Step) -> PrefectTask:
    """The Prefect task that runs `step`'s batches (no retries: nothing here is transient)."""
    return _step_batch.with_options(name=step.name, cache_policy=NO_CACHE, persist_result=False)
