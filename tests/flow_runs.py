"""Helpers for tests that run tasks in a Prefect flow against the simulator over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from distilflow.errors import BatchesFailedError
from distilflow.models import OpenAILLM
from distilflow.runner import RunOptions, run_tasks

FAST = {"retry_backoff": 0.01, "retry_max_delay": 0.05}


def llm(sim, **kwargs) -> OpenAILLM:
    """An OpenAILLM for the simulator `sim`, with quick client retries."""
    return OpenAILLM(model=kwargs.pop("model", "sim"), base_url=sim.base_url, **{**FAST, **kwargs})


def rows(n: int, prefix: str = "q") -> list[dict[str, Any]]:
    return [{"instruction": f"{prefix} {i}"} for i in range(n)]


@flow(task_runner=ThreadPoolTaskRunner(max_workers=8))
def generate(tasks, input_rows, options: RunOptions):
    result = run_tasks(tasks, input_rows, options)
    return result.final_state(data=result)


def run(tasks, input_rows, where: Path, **options) -> tuple[Any, Any]:
    """(final state, RunResult) of a flow run with answers under `where/results`.

    A failed run gives its RunResult too when it has one; a configuration error gives the error.
    """
    options = {"result_storage": str(where / "results"), "retry_delay_seconds": 0, "artifact_prefix": "test", **options}
    state = generate(tasks, input_rows, RunOptions(**options), return_state=True)
    value = state.result(raise_on_failure=False)
    return state, value.result if isinstance(value, BatchesFailedError) else value
