"""Tasks as Prefect task runs, against a real Prefect API and the simulator over HTTP."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from deployment_env import call_api
from flow_runs import llm, rows, run
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.sorting import TaskRunSort
from prefect.settings import PREFECT_API_URL

from distilflow.steps.tasks import Task, TextGeneration, UltraFeedback
from distilflow.models import DummyAsyncLLM
from distilflow.runner import run_tasks

pytestmark = pytest.mark.usefixtures("prefect_api")

def task_runs(flow_run_id, expected: int, timeout: float = 15.0) -> dict[str, Any]:
    """Task runs of a flow run by name, once all `expected` of them reached a final state."""
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                sort=TaskRunSort.EXPECTED_START_TIME_ASC,
                limit=200,
            )
        final = [r for r in runs if r.state and r.state.is_final()]
        if len(final) >= expected or time.monotonic() > deadline:
            return {r.name: r for r in runs}
        time.sleep(0.2)


def artifacts(flow_run_id, keys: tuple[str, ...]) -> dict[str, Any]:
    """The latest artifact of each key, if the given flow run made it.

    (This Prefect build's /artifacts/filter drops artifacts without a task run when the client
    sends its empty sub-filters, so artifacts are read by key.)
    """
    api = PREFECT_API_URL.value()
    found = {}
    for key in keys:
        response = call_api("GET", f"{api}/artifacts/{key}/latest")
        if response.status_code == 200 and response.json()["flow_run_id"] == str(flow_run_id):
            found[key] = response.json()
    return found


def test_second_run_is_all_cache_hits_and_sends_nothing(sim, tmp_path):
    task = TextGeneration(llm=llm(sim), input_batch_size=4)
    state, result = run(task, rows(10), tmp_path)
    assert state.is_completed() and state.name == "Completed"
    assert sim.stats()["requests"] == 10 and len(result.rows) == 10
    first_rows = result.rows

    state2, result2 = run(task, rows(10), tmp_path)
    assert sim.stats()["requests"] == 10  # no new request
    assert result2.rows == first_rows
    assert result2.steps[0].cache_hits == 3
    names = task_runs(state2.state_details.flow_run_id, 3)
    assert sorted(names) == ["text_generation_0[1/3]", "text_generation_0[2/3]", "text_generation_0[3/3]"]
    assert {r.state.name for r in names.values()} == {"Cached"}


def test_changed_row_model_prompt_or_settings_rerun_only_what_changed(sim, tmp_path):
    base = rows(8)
    run(TextGeneration(llm=llm(sim), input_batch_size=4), base, tmp_path)
    assert sim.stats()["requests"] == 8

    changed = [dict(r) for r in base]
    changed[5]["instruction"] = "something else"
    _, result = run(TextGeneration(llm=llm(sim), input_batch_size=4), changed, tmp_path)
    assert sim.stats()["requests"] == 9  # exactly the changed row's request re-sent
    assert result.steps[0].cache_hits == 1 and result.steps[0].answers_cached == 7

    # other batch boundaries: the answers are per request, not per batch
    before = sim.stats()["requests"]
    _, result = run(TextGeneration(llm=llm(sim), input_batch_size=3), changed, tmp_path)
    assert sim.stats()["requests"] == before and result.steps[0].cache_hits == 3

    for variant in (
        TextGeneration(llm=llm(sim, model="other"), input_batch_size=4),
        TextGeneration(llm=llm(sim), input_batch_size=4, system_prompt="Be brief."),
        TextGeneration(llm=llm(sim, generation_kwargs={"temperature": 0.1}), input_batch_size=4),
    ):
        before = sim.stats()["requests"]
        run(variant, base, tmp_path)
        assert sim.stats()["requests"] - before == 8, variant

    before = sim.stats()["requests"]
    run(TextGeneration(llm=llm(sim), input_batch_size=4), base, tmp_path, cache_version="2")
    assert sim.stats()["requests"] - before == 8
    before = sim.stats()["requests"]
    run(TextGeneration(llm=llm(sim), input_batch_size=4), base, tmp_path, refresh_cache=True)
    assert sim.stats()["requests"] - before == 8


class Strict(Task):
    """Rejects answers that contain the letter 'e' more than 5 times (a deterministic subset)."""

    @property
    def inputs(self):
        return ["instruction"]

    @property
    def outputs(self):
        return ["answer"]

    def format_input(self, input):
        return [{"role": "user", "content": input["instruction"]}]

    def format_output(self, output, input=None):
        if input["instruction"].endswith(("1", "4")):
            raise ValueError("answer is not in the expected format")
        return {"answer": output}


def test_fallbacks_are_visible_in_states_rows_and_artifacts(sim, tmp_path):
    task = Strict(name="strict", llm=llm(sim), input_batch_size=3)
    state, result = run(task, rows(6), tmp_path)
    assert state.is_completed() and state.name == "CompletedWithFallbacks"
    assert state.message.startswith("2 generations kept raw output (strict: 2)")
    fallbacks = [r for r in result.rows if r["answer"] is None]
    assert [r["instruction"] for r in fallbacks] == ["q 1", "q 4"]
    assert all(
        r["distilabel_metadata"]["fallback_reason_strict"] == "ValueError: answer is not in the expected format"
        for r in fallbacks
    )
    assert len(result.rows) == 6 and sim.stats()["requests"] == 6

    flow_run_id = state.state_details.flow_run_id
    runs = task_runs(flow_run_id, 2)
    for name in ("strict[1/2]", "strict[2/2]"):
        assert runs[name].state.name == "CompletedWithFallbacks"
        assert runs[name].state.message == (
            "3 inputs -> 3 rows; 1/3 generations kept raw output; most common reason (1x): "
            "ValueError: answer is not in the expected format"
        )
    found = artifacts(flow_run_id, ("test-summary", "test-fallbacks", "test-progress"))
    assert set(found) == {"test-summary", "test-fallbacks", "test-progress"}
    summary = found["test-summary"]["data"]
    assert '"fallbacks": 2' in summary and '"rows in": 6' in summary and '"cache hits": 0' in summary
    assert "answer is not in the expected format" in found["test-fallbacks"]["data"]
    assert found["test-progress"]["data"] == 100.0

    # a cache hit renames the batches `Cached`; the counts come from the rows and stay right
    state2, result2 = run(task, rows(6), tmp_path)
    assert state2.name == "CompletedWithFallbacks" and result2.fallbacks == 2
    assert sim.stats()["requests"] == 6


def test_rate_limit_and_server_error_storms_complete_with_nothing_lost(sim, tmp_path):
    sim.configure(rate_limit_fraction=0.3, server_error_fraction=0.15, unavailable_fraction=0.1, retry_after=0.01, fault_seed=7)
    task = TextGeneration(llm=llm(sim, max_retries=10), input_batch_size=5, num_generations=2)
    state, result = run(task, rows(20), tmp_path)
    assert state.name == "Completed"
    assert len(result.rows) == 40 and result.fallbacks == 0
    assert all(r["generation"] for r in result.rows)
    stats = sim.stats()
    assert stats["by_status"]["200"] == 20 and stats["requests"] > 20  # faults happened and were retried


def test_a_400_fails_its_row_alone_once_without_retries(sim, tmp_path):
    sim.configure(refuse_containing=["q 1"])
    task = TextGeneration(llm=llm(sim), input_batch_size=2)
    state, result = run(task, rows(4), tmp_path, retries=3, max_concurrent_batches=1)
    assert state.is_completed() and state.name == "CompletedWithFailedRows"
    assert state.message.startswith("text_generation_0: 1 of 4 rows failed: HTTP 400 context_length_exceeded: ")
    assert [r["instruction"] for r in result.rows] == ["q 0", "q 1", "q 2", "q 3"]
    failed = result.rows[1]
    assert failed["generation"] is None and failed["model_name"] == "sim"
    error = failed["distilabel_metadata"]["error_text_generation_0"]
    assert error["status_code"] == 400 and error["code"] == "context_length_exceeded"
    assert error["message"].startswith("This model's maximum context length is")
    assert "fallback_reason_text_generation_0" not in failed["distilabel_metadata"]
    assert all(r["generation"] for r in result.rows if r is not failed)
    assert sim.stats()["requests"] == 4  # the refused request was not retried
    runs = task_runs(state.state_details.flow_run_id, 2)
    assert runs["text_generation_0[1/2]"].state.name == "CompletedWithFailedRows"
    assert runs["text_generation_0[1/2]"].state.message.startswith("1 of 2 rows failed: HTTP 400 context_length_exceeded")
    assert runs["text_generation_0[1/2]"].run_count == 1
    assert runs["text_generation_0[2/2]"].state.name == "Completed"
    found = artifacts(state.state_details.flow_run_id, ("test-failed-rows", "test-summary"))
    assert "context_length_exceeded" in found["test-failed-rows"]["data"] and "q 1" in found["test-failed-rows"]["data"]
    assert '"failed rows": 1' in found["test-summary"]["data"]

    # failed answers are not cached: a re-run asks for that row only
    sim.reset()
    state2, result2 = run(task, rows(4), tmp_path)
    assert sim.stats()["requests"] == 1 and state2.name == "CompletedWithFailedRows"
    sim.configure(refuse_containing=[])
    state3, result3 = run(task, rows(4), tmp_path)
    assert sim.stats()["requests"] == 2 and state3.name == "Completed" and result3.rows[1]["generation"]


def test_prefect_retries_a_batch_after_a_transient_outage(sim, tmp_path):
    sim.configure(fault_script=[503, 503])
    task = TextGeneration(llm=llm(sim, max_retries=0), input_batch_size=1)
    state, result = run(task, rows(1), tmp_path, retries=3, max_concurrent_batches=1)
    assert state.name == "Completed" and len(result.rows) == 1
    assert sim.stats()["requests"] == 3
    runs = task_runs(state.state_details.flow_run_id, 1)
    assert runs["text_generation_0[1/1]"].run_count == 3


def test_a_transient_failure_past_every_retry_fails_its_rows_alone(sim, tmp_path):
    task = TextGeneration(llm=llm(sim, max_retries=0), input_batch_size=2)
    sim.configure(fault_script=["ok", "ok", 500, 500])  # batch 1 fine; batch 2's requests fail
    state, result = run(task, rows(6), tmp_path, retries=0, max_concurrent_batches=1)
    assert state.name == "CompletedWithFailedRows" and "2 of 6 rows failed: HTTP 500" in state.message
    assert [r["instruction"] for r in result.rows] == [f"q {i}" for i in range(6)]
    assert [r["generation"] is None for r in result.rows] == [False, False, True, True, False, False]
    assert sim.stats()["by_status"]["200"] == 4

    state2, result2 = run(task, rows(6), tmp_path, retries=0)
    assert state2.name == "Completed" and all(r["generation"] for r in result2.rows)
    assert sim.stats()["by_status"]["200"] == 6  # only the two failed rows were asked again
    assert result2.steps[0].cache_hits == 2


def test_grouped_and_ungrouped_shapes_end_to_end(sim, tmp_path):
    ungrouped = TextGeneration(name="u", llm=llm(sim), num_generations=3, input_batch_size=5)
    grouped = TextGeneration(name="g", llm=llm(sim), num_generations=3, group_generations=True, input_batch_size=5)
    s1, r1 = run(ungrouped, rows(5), tmp_path)
    s2, r2 = run(grouped, rows(5), tmp_path)
    assert len(r1.rows) == 15 and len(r2.rows) == 5
    assert all(isinstance(r["generation"], list) and len(r["generation"]) == 3 for r in r2.rows)
    assert [r["generation"] for r in r1.rows[:3]] == r2.rows[0]["generation"]  # same answers, other shape
    # one request with n=3 per input; the grouped run sends the same requests: answered from the cache
    assert sim.stats()["requests"] == 5
    runs1 = task_runs(s1.state_details.flow_run_id, 1)
    runs2 = task_runs(s2.state_details.flow_run_id, 1)
    assert runs1["u[1/1]"].state.message == "5 inputs -> 15 rows"
    assert runs2["g[1/1]"].state.message == "5 inputs -> 5 rows x 3 generations; every answer from the answer cache"
    assert r2.steps[0].shape() == "5 inputs -> 5 rows x 3 generations"


def test_judge_batches_start_before_generation_finishes(sim, tmp_path):
    sim.configure(latency=0.3)
    gen = TextGeneration(llm=llm(sim), num_generations=2, group_generations=True, input_batch_size=2)
    judge = UltraFeedback(llm=llm(sim), input_mappings={"generations": "generation"}, use_default_structured_output=True)
    state, result = run([gen, judge], rows(8), tmp_path, max_concurrent_batches=2)
    assert state.name == "Completed" and len(result.rows) == 8
    row = result.rows[0]
    assert len(row["generation"]) == 2 and len(row["ratings"]) == 2
    assert all(1 <= r <= 5 for r in row["ratings"])
    # both steps' metadata are kept on the row
    meta = row["distilabel_metadata"]
    assert isinstance(meta, dict) and "raw_output_ultra_feedback_0" in meta
    runs = task_runs(state.state_details.flow_run_id, 8)
    first_judge_start = min(r.start_time for n, r in runs.items() if n.startswith("ultra_feedback_0"))
    last_gen_end = max(r.end_time for n, r in runs.items() if n.startswith("text_generation_0"))
    assert first_judge_start < last_gen_end


def test_outside_a_flow_the_same_call_runs_in_process_with_the_answer_cache(sim, tmp_path):
    from distilflow.storage import answer_store

    result = run_tasks(TextGeneration(llm=llm(sim), input_batch_size=3), rows(7), result_storage=str(tmp_path))
    assert len(result.rows) == 7 and result.steps[0].batches == 3 and result.steps[0].cache_hits == 0
    assert sim.stats()["requests"] == 7 and len(answer_store(str(tmp_path))) == 7
    again = run_tasks(TextGeneration(llm=llm(sim), input_batch_size=3), rows(7), result_storage=str(tmp_path))
    assert again.rows == result.rows and again.steps[0].cache_hits == 3 and sim.stats()["requests"] == 7


def test_result_storage_can_be_an_fsspec_uri(sim, tmp_path):
    from distilflow.storage import answer_store

    task = TextGeneration(llm=llm(sim), input_batch_size=2)
    storage = f"memory://distilflow-{tmp_path.name}"
    run(task, rows(4), tmp_path, result_storage=storage)
    _, again = run(task, rows(4), tmp_path, result_storage=storage)
    assert sim.stats()["requests"] == 4 and again.steps[0].cache_hits == 2
    assert len(answer_store(storage)) == 4


def test_batches_run_concurrently_up_to_the_limit(sim, tmp_path):
    sim.configure(latency=0.2)
    task = TextGeneration(llm=llm(sim), input_batch_size=1)
    state, result = run(task, rows(6), tmp_path, max_concurrent_batches=3)
    assert state.name == "Completed" and len(result.rows) == 6
    assert sim.stats()["max_in_flight"] == 3  # one request per batch, three batches at a time


def test_a_global_concurrency_limit_caps_batches_across_runs(sim, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="sim-model-batches", limit=1))
    sim.configure(latency=0.2)
    task = TextGeneration(llm=llm(sim), input_batch_size=1)
    state, result = run(task, rows(4), tmp_path, max_concurrent_batches=4, concurrency_limit="sim-model-batches")
    assert state.name == "Completed" and len(result.rows) == 4
    assert sim.stats()["max_in_flight"] == 1  # four batches allowed locally, one by the shared limit

    state, _ = run(TextGeneration(llm=llm(sim), input_batch_size=1, name="other"), rows(2), tmp_path, concurrency_limit="no-such-limit", retries=0)
    assert state.is_failed() and "prefect gcl create no-such-limit" in state.message


def test_a_prefect_rate_limit_paces_requests_across_runs_and_is_checked_first(sim, tmp_path):
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name="sim-rpm", limit=4, slot_decay_per_second=4.0)
        )
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="sim-at-once", limit=4))
    task = TextGeneration(llm=llm(sim), input_batch_size=4)
    started = time.monotonic()
    state, result = run(task, rows(12), tmp_path, rate_limit="sim-rpm")
    took = time.monotonic() - started
    assert state.name == "Completed" and len(result.rows) == 12 and sim.stats()["requests"] == 12
    # 4 slots at once, then 4 a second: the last 8 requests cannot all go before 2 s have passed
    assert took >= 1.8, took

    started = time.monotonic()
    state, result = run(task, rows(12), tmp_path, rate_limit="sim-rpm")  # cache hits take no slot
    assert state.name == "Completed" and result.steps[0].cache_hits == 3
    assert time.monotonic() - started < took

    for name, fix in (("no-such-limit", "prefect gcl create no-such-limit"), ("sim-at-once", "slot-decay")):
        state, _ = run(TextGeneration(llm=llm(sim), input_batch_size=4, name=f"other_{len(name)}"), rows(4),
                       tmp_path, rate_limit=name)
        assert state.is_failed() and fix in state.message
    assert sim.stats()["requests"] == 12  # refused before any request


def test_outside_a_flow_failures_follow_the_same_rules(sim):
    task = TextGeneration(llm=llm(sim, max_retries=0), input_batch_size=1)
    sim.configure(fault_script=[500])  # transient, and no batch retry outside a flow: that row fails
    result = run_tasks(task, rows(3))
    assert result.complete and result.failed_rows == 1 and len(result.rows) == 3
    assert result.rows[0]["distilabel_metadata"]["error_text_generation_0"]["status_code"] == 500
    sim.reset()
    sim.configure(fault_script=[401])  # the key is refused: nothing new starts
    result = run_tasks(TextGeneration(llm=llm(sim, max_retries=0), input_batch_size=1, name="other"), rows(3))
    assert result.failed_batches == ["other[1/3]"] and result.rows == []
    assert result.steps[0].not_run == 2 and sim.stats()["requests"] == 1
    assert result.final_state().is_failed() and "Check the API key" in result.final_state().message


class SlowFirstLLM(DummyAsyncLLM):
    """Answers at once, except inputs that contain "slow", which take a second and a half."""

    async def agenerate(self, input, num_generations=1, **kwargs):
        if "slow" in str(input):
            await asyncio.sleep(1.5)
        return await super().agenerate(input, num_generations, **kwargs)


def straggling_rows(prefix: str) -> list[dict[str, Any]]:
    """Six batches of four whose first row is slow: every batch has a straggler."""
    return [{"instruction": f"{prefix} {'slow' if i % 4 == 0 else 'fast'} {i}"} for i in range(24)]


def test_requests_set_the_pace_a_slow_answer_holds_one_slot_not_a_batch(tmp_path):
    """Four request slots, batches of four, one slow answer in every batch: while batch 1 waits for
    its slow answer, its three other slots go to the next batches, which start before it ends."""
    task = TextGeneration(llm=SlowFirstLLM(max_concurrent_requests=4), input_batch_size=4)
    state, result = run(task, straggling_rows("a"), tmp_path)
    assert state.name == "Completed" and len(result.rows) == 24
    runs = task_runs(state.state_details.flow_run_id, 6)
    first = runs["text_generation_0[1/6]"]
    assert all(runs[f"text_generation_0[{i}/6]"].start_time < first.end_time for i in (2, 3, 4))

    # a fixed number of batches (the old way): the third waits for one of the first two to end
    state, _ = run(task, straggling_rows("b"), tmp_path, max_concurrent_batches=2)
    runs = task_runs(state.state_details.flow_run_id, 6)
    first_end = min(runs[f"text_generation_0[{i}/6]"].end_time for i in (1, 2))
    assert runs["text_generation_0[3/6]"].start_time >= first_end
