"""One batch of one step = one Prefect task run.

The batch asks its model through the answer cache (`distilflow.answers`): answers already stored are
used, the others are requested and stored as they arrive, and the rows are always made from
answers by the task's current code. So there is no Prefect result cache on top: it could only
return rows made by older code, and a batch whose answers are all stored costs no request anyway.

The batch's state says what happened: `Completed` with the shape as its message, `Cached` when
every answer came from the cache, `CompletedWithFallbacks` when generations kept their raw output,
`CompletedWithFailedRows` when requests failed for some rows (how many, the most common reason).
A transient failure (outage, rate limit past every retry) fails the run while Prefect may still
retry it, and the retry re-sends only what was not answered; on the last attempt the rows fail
alone. Configuration errors (401/403/404) fail the batch at once.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Union

from prefect import Task as PrefectTask
from prefect import task as prefect_task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State
from prefect.tasks import exponential_backoff

from distilflow.answers import AnswerContext, answering
from distilflow.steps.tasks.base import _Task
from distilflow.errors import ModelRequestError
from distilflow.runner.global_limits import RateLimit, global_slot
from distilflow.runner.options import RunOptions
from distilflow.runner.pace import progress_of
from distilflow.runner.report import RowCounts, count_rows, failure_message, fallback_message, shape_message

__all__ = [
    "FAILED_ROWS_STATE_NAME", "FALLBACK_STATE_NAME", "AnswerSettings", "BatchOutput", "Opaque", "batch_task_for",
    "execute_batch",
]

FALLBACK_STATE_NAME = "CompletedWithFallbacks"
FAILED_ROWS_STATE_NAME = "CompletedWithFailedRows"


@dataclass(frozen=True)
class AnswerSettings:
    """Where a run's answers are kept, and how it uses them."""

    location: str
    version: str = ""
    refresh: bool = False


@dataclass
class BatchOutput:
    """A batch's rows, and how many of its model inputs were answered from the cache or sent."""

    rows: list[dict[str, Any]]
    counts: RowCounts
    cached: int = 0
    sent: int = 0

    @property
    def from_cache(self) -> bool:
        return self.sent == 0 and self.cached > 0


def process_rows(task: _Task, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All output rows of `task` on `rows` (mappings applied; rows were checked up front)."""
    return [row for batch in task.process_applying_mappings(rows, validated=True, whole=True) for row in batch]


def execute_batch(
    task: _Task,
    rows: list[dict[str, Any]],
    answers: Union[AnswerSettings, None],
    prior: Union[dict[int, int], None] = None,
    *,
    final_attempt: bool = True,
    on_answered: Union[Callable[[int], None], None] = None,
    rate_limit: Union[RateLimit, None] = None,
) -> BatchOutput:
    """The rows of one batch, its model inputs answered through the answer cache when `answers` is set."""
    store = None
    if answers is not None:
        from distilflow.storage import answer_store

        store = answer_store(answers.location)
    context = AnswerContext(
        store=store, version=answers.version if answers else "",
        # a step built with `use_cache=False` asks its model again on every run (distilabel's step setting)
        refresh=bool(answers and (answers.refresh or not getattr(task, "use_cache", True))),
        final_attempt=final_attempt, prior=dict(prior or {}), on_answered=on_answered,
        before_sending=rate_limit,
    )
    with answering(context):
        out = process_rows(task, rows)
    return BatchOutput(out, count_rows(task, out), cached=context.cached, sent=context.sent)


class Opaque:
    """A task-run parameter Prefect passes on as it is.

    Before each task run Prefect walks its parameters for futures to resolve, into every list,
    dict and model: for a batch's rows and its task, which hold none, that is a walk over every
    row for nothing (profiled in a re-run from the cache: about a fifth as much as the batch itself).
    Prefect's own `quote` does the same but does not survive the trip to Dask workers.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __getstate__(self) -> tuple[Any]:
        return (self.value,)  # (a falsy state would skip __setstate__)

    def __setstate__(self, state: tuple[Any]) -> None:
        (self.value,) = state


def run_batch(
    task: Union[_Task, Opaque],
    rows: Union[list[dict[str, Any]], Opaque],
    label: str,
    answers: Union[AnswerSettings, None] = None,
    prior: Union[dict[int, int], None] = None,
    concurrency_limit: Union[str, None] = None,
    pace: Union[str, None] = None,
    rate_limit: Union[RateLimit, None] = None,
) -> State:
    """The body of a batch task run: generate, then name the state after what happened."""
    task = task.value if isinstance(task, Opaque) else task
    rows = rows.value if isinstance(rows, Opaque) else rows
    with global_slot(concurrency_limit) if concurrency_limit else nullcontext():
        output = execute_batch(
            task, rows, answers, prior, final_attempt=_last_attempt(), on_answered=progress_of(pace, label),
            rate_limit=rate_limit,
        )
    return batch_state(task, len(rows), output)


def batch_state(task: _Task, inputs: int, output: BatchOutput) -> State:
    counts = output.counts
    parts = [shape_message(task, inputs, len(output.rows))]
    if output.from_cache:
        parts.append("every answer from the answer cache")
    elif output.cached:
        parts.append(f"{output.cached} of {output.cached + output.sent} answers from the answer cache")
    name = "Cached" if output.from_cache else "Completed"
    if counts.fallbacks:
        name = FALLBACK_STATE_NAME
        parts.append(fallback_message(counts))
    if counts.failed_rows:
        name = FAILED_ROWS_STATE_NAME
        parts.insert(0, failure_message(counts))
    return Completed(name=name, message="; ".join(parts), data=output)


def _last_attempt() -> bool:
    """Whether Prefect will not retry this task run if it fails (its last attempt)."""
    from prefect.context import TaskRunContext

    context = TaskRunContext.get()
    if context is None:
        return True
    return context.task_run.run_count > (context.task.retries or 0)


def retry_if_transient(task: PrefectTask, task_run: Any, state: State) -> bool:
    """Retry a failed batch only when the model failure may pass (rate limit, outage, timeout)."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, ModelRequestError) and error.transient


_batch = prefect_task(run_batch, name="distilflow-batch", task_run_name="{label}")


def batch_task_for(task: _Task, options: RunOptions) -> PrefectTask:
    """The Prefect task that runs `task`'s batches with the run's retry settings."""
    return _batch.with_options(
        name=task.name,
        cache_policy=NO_CACHE,  # the answer cache is the cache (see the module docstring)
        persist_result=False,
        retries=options.retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=options.retry_delay_seconds)(options.retries)
        if options.retries
        else 0,
        retry_jitter_factor=options.retry_jitter_factor,
        retry_condition_fn=retry_if_transient,
    )
