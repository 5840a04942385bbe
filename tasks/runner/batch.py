"""One batch of one step = one Prefect task run.

The batch's state says what happened: `Completed` with the shape as its message, or
`CompletedWithFallbacks` with how many generations kept their raw output and the most common
reason. Transient model failures (after the client's own retries) fail the run so that Prefect
retries it later; anything else fails it at once.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Any, Union

from prefect import Task as PrefectTask
from prefect import task as prefect_task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State
from prefect.tasks import exponential_backoff

from tasks.base import _Task
from tasks.errors import DistilflowUserError, ModelRequestError
from tasks.runner.cache import StepCachePolicy, digest, step_identity
from tasks.runner.options import RunOptions
from tasks.runner.report import count_rows, fallback_message, shape_message

__all__ = ["FALLBACK_STATE_NAME", "batch_task_for", "process_rows"]

FALLBACK_STATE_NAME = "CompletedWithFallbacks"


def process_rows(task: _Task, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All output rows of `task` on `rows` (mappings applied; rows were checked up front)."""
    return [row for batch in task.process_applying_mappings(rows, validated=True) for row in batch]


def run_batch(task: _Task, rows: list[dict[str, Any]], label: str, concurrency_limit: Union[str, None] = None) -> State:
    """The body of a batch task run: generate, then name the state after what happened."""
    with _global_slot(concurrency_limit) if concurrency_limit else nullcontext():
        out = process_rows(task, rows)
    counts = count_rows(task, out)
    message = shape_message(task, len(rows), len(out))
    if counts.fallbacks:
        return Completed(name=FALLBACK_STATE_NAME, message=f"{message}; {fallback_message(counts)}", data=out)
    return Completed(message=message, data=out)


@contextmanager
def _global_slot(name: str):
    """One slot of a Prefect global concurrency limit, shared by every worker."""
    from prefect.concurrency.sync import concurrency

    try:
        with concurrency(name, occupy=1, strict=True):
            yield
    except Exception as e:
        if type(e).__name__ != "ConcurrencySlotAcquisitionError":  # (its module is private)
            raise
        raise DistilflowUserError(
            f"Could not take a slot of the global concurrency limit {name!r} ({e}). If it does not "
            f"exist, create it with `prefect gcl create {name} --limit <batches at once>`, or unset "
            "concurrency_limit."
        ) from e


def retry_if_transient(task: PrefectTask, task_run: Any, state: State) -> bool:
    """Retry a failed batch only when the model failure may pass (rate limit, outage, timeout)."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, ModelRequestError) and error.transient


_batch = prefect_task(run_batch, name="distilflow-batch", task_run_name="{label}")


def result_storage_for(location: str) -> Any:
    """Distilflow's saved storage block for `location` (a local directory or any fsspec URI).

    Prefect accepts only saved blocks (or a Path) as result storage. The block writes each result
    whole or not at all, which Prefect's local block does not (a run killed mid-write, or two runs
    writing one cache key at once, could leave a mixed file), and it holds the location and
    nothing else: credentials and endpoints come from the worker's environment (or a Secret
    block), through `storage.filesystem`, since a block's settings are stored in plain text.
    """
    from storage import result_storage_block

    return result_storage_block(location)


def batch_task_for(task: _Task, options: RunOptions) -> PrefectTask:
    """The Prefect task that runs `task`'s batches with the run's retry and cache settings."""
    retry = {
        "retries": options.retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=options.retry_delay_seconds)(options.retries)
        if options.retries
        else 0,
        "retry_jitter_factor": options.retry_jitter_factor,
        "retry_condition_fn": retry_if_transient,
    }
    if not options.cache:
        return _batch.with_options(name=task.name, cache_policy=NO_CACHE, persist_result=False, **retry)
    identity = digest(step_identity(task, options.cache_version))
    return _batch.with_options(
        name=task.name,
        cache_policy=StepCachePolicy(identity=identity),
        persist_result=True,
        result_storage=result_storage_for(options.resolved_result_storage()),
        refresh_cache=options.refresh_cache,
        **retry,
    )
