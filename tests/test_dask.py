"""Scale-out: the same flow on a local Dask cluster (worker processes) gives the same rows."""

from __future__ import annotations

import pytest
from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from distilflow.steps.tasks import TextGeneration, UltraFeedback
from distilflow.models import OpenAILLM
from distilflow.runner import run_tasks

pytestmark = pytest.mark.usefixtures("prefect_api")


def steps(base_url: str):
    generate = TextGeneration(llm=OpenAILLM(model="sim", base_url=base_url), num_generations=2, group_generations=True, input_batch_size=3)
    judge = UltraFeedback(llm=OpenAILLM(model="sim", base_url=base_url), input_mappings={"generations": "generation"},
                          use_default_structured_output=True)
    return [generate, judge]


# Module level, like the flows in flows/: Dask workers receive the flow run's context, flow
# function included, so it must pickle by reference (a closure over the simulator would not).
def preferences(base_url: str, storage: str) -> dict:
    result = run_tasks(steps(base_url), [{"instruction": f"question {i}"} for i in range(10)],
                       result_storage=storage, artifact_prefix="dask-test", progress=False)
    return {"rows": result.rows, "failed": result.failed_batches}


def run_on(task_runner, sim, storage):
    return flow(preferences, task_runner=task_runner)(sim.base_url, storage)


def test_dask_task_runner_gives_the_same_rows_as_threads(sim, tmp_path):
    on_threads = run_on(ThreadPoolTaskRunner(max_workers=4), sim, str(tmp_path / "threads"))
    sent = sim.stats()["requests"]
    on_dask = run_on(
        DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 2, "processes": True, "dashboard_address": None}),
        sim, str(tmp_path / "dask"),
    )
    assert on_threads["failed"] == on_dask["failed"] == []
    assert len(on_dask["rows"]) == 10 and on_dask["rows"] == on_threads["rows"]
    assert sim.stats()["requests"] == 2 * sent  # the Dask run generated everything itself (own cache)
    from distilflow.storage import answer_store

    assert len(answer_store(str(tmp_path / "dask"))) == 20  # 10 generation + 10 judge answers, stored by the workers
