"""Server faults: multi-batch runs inside Prefect flows against the simulator misbehaving.

Every run must complete with every input row in the output (rows in x generations = rows out),
transient faults (429 with Retry-After, 500/503, timeouts, connection resets, a restarted
server, an answer that is not an answer) must never become fallback rows, and model answers
that are empty or unparsable must become fallback rows carrying `fallback_reason_<task>`.

What is transient and what is a fallback (src/distilflow/models/_openai_compat.py, `_checked_answer`):

* retried, never a row: 408/409/429/5xx, connection errors (refused, reset), timeouts, an HTTP
  200 whose body is not JSON ("garbage", a proxy's error page) and an HTTP 200 whose JSON is not
  a completion ("no_choices": no `choices`). There is no model output to keep; the request is
  retried with backoff, and the batch by Prefect if the failure outlasts those retries.
* a fallback row: a well-formed completion whose text is empty ("empty": reason
  "EmptyOutput: the model returned no text"), or whose text the task cannot parse ("malformed":
  truncated JSON for the UltraFeedback judge asked for JSON, reason "UnparsableOutput: ...", with
  distilabel's None-list columns).
  TextGeneration accepts any text, so its "malformed" answers ("<<malformed>>") are kept as
  generations: a text task cannot tell them from an answer.

Exact numbers come from the simulator's side. With seeded fault fractions the faults are drawn
one per request in arrival order, so whichever request gets which draw, a run that needs R
answered requests (and never re-runs a batch) consumes exactly the draws up to the R-th draw that
answers: `replay` computes them without a server.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.task_runners import ThreadPoolTaskRunner

from distilflow.steps.tasks import TextGeneration, UltraFeedback
from distilflow.errors import ModelRequestError
from distilflow.models import OpenAIImageGeneration, OpenAILLM
from distilflow.models._concurrency import AdaptiveLimit
from distilflow.runner import FALLBACK_STATE_NAME, RunOptions, run_tasks
from distilflow.simulator import Simulator, SimulatorConfig
from distilflow.simulator.state import SimulatorState

pytestmark = [pytest.mark.usefixtures("prefect_api"), pytest.mark.timeout(120)]

EMPTY_REASON = "EmptyOutput: the model returned no text"
# Fault kinds after which the client keeps the answer (a row, maybe a fallback row); every other
# kind is retried and so draws again.
ANSWERED = {"ok", "malformed", "empty"}
STATUS_OF = {"ok": "200", "malformed": "200", "empty": "200", "garbage": "200", "no_choices": "200",
             "timeout": "499", "reset": "444"}


# -- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def sim():
    """A simulator for this test alone: exact counts must not see a straggler of another test
    (a hung request abandoned by its client may still be answered after the next test began)."""
    with Simulator() as simulator:
        yield simulator


def client(base_url: str, **kwargs: Any) -> OpenAILLM:
    settings = {"retry_backoff": 0.02, "retry_max_delay": 0.5, "max_retries": 8, "timeout": 10.0,
                "max_concurrent_requests": 16, **kwargs}
    return OpenAILLM(model="sim-model", base_url=base_url, **settings)


def instructions(n: int, prefix: str) -> list[dict[str, Any]]:
    return [{"instruction": f"{prefix} question {i}: explain item {i * 7 % 11}"} for i in range(n)]


@flow(name="server-faults", task_runner=ThreadPoolTaskRunner(max_workers=8))
def generate(task, input_rows, options: RunOptions):
    result = run_tasks(task, input_rows, options)
    return result.final_state(data=result)


def run(task, input_rows, tmp_path, **options):
    """Run `task` on the rows in a Prefect flow; (flow state, RunResult)."""
    settings = {"result_storage": str(tmp_path / "results"), "retry_delay_seconds": 0.2, "retries": 6,
                "max_concurrent_batches": 4, "artifact_prefix": "faults", **options}
    state = generate(task, input_rows, RunOptions(**settings), return_state=True)
    return state, state.result(raise_on_failure=False)


def replay(config: SimulatorConfig, requests: int) -> tuple[Counter, Counter]:
    """(faults, statuses) a run meets that needs `requests` answered requests (see module doc)."""
    state = SimulatorState(config)
    faults: Counter = Counter()
    statuses: Counter = Counter()
    answered = 0
    while answered < requests:
        _, fault, _ = state.begin_request("chat.completions")
        faults[fault] += 1
        statuses[str(fault) if isinstance(fault, int) else STATUS_OF[fault]] += 1
        answered += fault in ANSWERED
    return faults, statuses


def payload_faults(faults: Counter) -> dict[str, int]:
    return dict(sorted((k, v) for k, v in faults.items() if isinstance(k, str) and k != "ok"))


def batch_runs(flow_run_id, expected: int, timeout: float = 15.0) -> list[Any]:
    """The flow run's task runs, once `expected` of them reached a final state."""
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as prefect:
            runs = prefect.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200)
        if sum(1 for r in runs if r.state and r.state.is_final()) >= expected or time.monotonic() > deadline:
            return runs
        time.sleep(0.2)


def settled(sim: Simulator, status: str, count: int, timeout: float = 5.0) -> dict[str, Any]:
    """Stats once `count` answers of `status` are recorded (a 499 is recorded when the client leaves)."""
    deadline = time.monotonic() + timeout
    while sim.stats()["by_status"].get(status, 0) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return sim.stats()


def check_rows(result, input_rows, n: int, task_name: str, fallback_reason: str | None = None) -> list[dict]:
    """Every input row n times (ungrouped); returns the fallback rows, each checked for its reason."""
    assert result.errors == {} and result.failed_batches == []
    assert len(result.rows) == result.rows_out == len(input_rows) * n
    assert Counter(r["instruction"] for r in result.rows) == {r["instruction"]: n for r in input_rows}
    key = f"fallback_reason_{task_name}"
    fallbacks = [r for r in result.rows if key in r["distilabel_metadata"]]
    assert result.fallbacks == len(fallbacks)
    for row in fallbacks:
        reason = row["distilabel_metadata"][key]
        assert reason.startswith(fallback_reason) if fallback_reason else reason, reason
        assert f"raw_output_{task_name}" in row["distilabel_metadata"]
    return fallbacks


# -- 1. 429 storms -------------------------------------------------------------------------------


def test_429_storm_with_retry_after_completes_and_retry_after_is_honoured(sim, tmp_path):
    # 150 scripted answers, 60% of them 429 with Retry-After 0.3 s, then the storm passes
    draws = random.Random(2024)
    storm: list[int | str] = [429 if draws.random() < 0.6 else "ok" for _ in range(150)]
    sim.configure(fault_script=storm, retry_after=0.3, latency=0.01)
    input_rows = instructions(120, "storm")
    task = TextGeneration(llm=client(sim.base_url, max_retries=25), input_batch_size=10)

    state, result = run(task, input_rows, tmp_path)

    assert state.name == "Completed", state.message
    assert check_rows(result, input_rows, 1, task.name) == []
    assert result.steps[0].completed == 12 and result.steps[0].rows_out == 120
    stats = sim.stats()
    assert stats["by_status"] == {"200": 120, "429": storm.count(429)}
    # no request came back before the 0.3 s its 429 asked for (the backoff alone would be 0.02 s)
    assert stats["early_retries"] == 0
    assert {r.run_count for r in batch_runs(state.state_details.flow_run_id, 12)} == {1}


def test_a_concurrency_quota_storm_converges_without_losing_rows(sim, tmp_path):
    # a provider that takes 4 requests at a time and answers 429 at once to the rest, while the
    # client starts with 32 in flight and 4 batches run at once
    sim.configure(max_concurrent_requests=4, retry_after=0.05, latency=0.03)
    input_rows = instructions(120, "quota")
    task = TextGeneration(llm=client(sim.base_url, max_concurrent_requests=32, max_retries=60), input_batch_size=15)

    state, result = run(task, input_rows, tmp_path)

    assert state.name == "Completed", state.message
    assert check_rows(result, input_rows, 1, task.name) == []
    stats = sim.stats()
    assert stats["by_status"]["200"] == 120 and stats["by_status"]["429"] > 0
    assert set(stats["by_status"]) == {"200", "429"}
    assert stats["max_in_flight"] == 4
    assert stats["early_retries"] == 0


# -- 2. 500/503 bursts ---------------------------------------------------------------------------


def test_5xx_bursts_short_ones_retried_in_the_request_a_long_one_by_prefect(sim, tmp_path):
    short = ([500, 503, 500] + ["ok"] * 8) * 6  # each shorter than a request's 3 retries
    long_burst = [500, 503] * 20  # 40 in a row: the requests in flight run out of retries
    script = short + long_burst
    sim.configure(fault_script=script, latency=0.01, retry_after=0.02)
    input_rows = instructions(100, "burst")
    task = TextGeneration(llm=client(sim.base_url, max_retries=3, max_concurrent_requests=8), input_batch_size=10)

    state, result = run(task, input_rows, tmp_path, retries=8)

    assert state.name == "Completed", state.message
    assert check_rows(result, input_rows, 1, task.name) == []
    stats = sim.stats()
    # every scripted failure was served (the run went on past the script), and nothing else failed
    assert stats["by_status"]["500"] == script.count(500) == 32
    assert stats["by_status"]["503"] == script.count(503) == 26
    assert set(stats["by_status"]) == {"200", "500", "503"}
    # a batch whose request ran out of retries was re-run by Prefect, and nothing else re-ran
    # more than needed: every answer beyond the 100 kept ones belongs to a re-run batch
    runs = batch_runs(state.state_details.flow_run_id, 10)
    assert len(runs) == 10 and all(r.state.is_completed() for r in runs)
    rerun = [r for r in runs if r.run_count > 1]
    assert rerun, [(r.name, r.run_count) for r in runs]
    wasted = stats["by_status"]["200"] - 100
    assert 0 <= wasted <= sum(10 * (r.run_count - 1) for r in rerun)


# -- 3. timeouts ---------------------------------------------------------------------------------


def test_timeouts_are_retried_and_never_become_rows(sim, tmp_path):
    sim.configure(timeout_fraction=0.12, hang_seconds=30, fault_seed=11, latency=0.01)
    input_rows = instructions(60, "slow")
    task = TextGeneration(llm=client(sim.base_url, timeout=3.0), input_batch_size=10, num_generations=2)
    faults, statuses = replay(sim.config, 60)  # one request (n=2) per input row
    assert faults["timeout"] >= 5

    started = time.monotonic()
    state, result = run(task, input_rows, tmp_path)
    elapsed = time.monotonic() - started

    assert state.name == "Completed", state.message
    assert check_rows(result, input_rows, 2, task.name) == []
    stats = settled(sim, "499", statuses["499"])
    assert stats["by_status"] == dict(statuses) == {"200": 60, "499": faults["timeout"]}
    assert stats["faults"] == {"timeout": faults["timeout"]}
    assert elapsed < 30  # the client gave up after its 3 s timeout, never waited out a 30 s hang


# -- 4. connection resets ------------------------------------------------------------------------


def test_connection_resets_are_retried_and_never_become_rows(sim, tmp_path):
    sim.configure(reset_fraction=0.2, fault_seed=5, latency=0.01)
    input_rows = instructions(80, "reset")
    task = TextGeneration(llm=client(sim.base_url), input_batch_size=10)
    faults, statuses = replay(sim.config, 80)
    assert faults["reset"] >= 10

    state, result = run(task, input_rows, tmp_path)

    assert state.name == "Completed", state.message
    assert check_rows(result, input_rows, 1, task.name) == []
    stats = sim.stats()
    assert stats["by_status"] == dict(statuses) == {"200": 80, "444": faults["reset"]}
    assert stats["faults"] == {"reset": faults["reset"]}


# -- 5. the server restarted mid-run -------------------------------------------------------------


def test_simulator_restarted_mid_run_on_the_same_port(tmp_path):
    settings = {"latency": 0.1}
    first = Simulator(**settings).start()
    port = first.port
    second = Simulator(port=port, **settings)
    input_rows = instructions(80, "restart")
    # while no request gets through (connections refused), requests wait for the server instead of
    # spending their 3 retries (0.35-0.7 s): the 1.5 s outage is waited out within the batches
    task = TextGeneration(
        llm=client(first.base_url, max_retries=3, retry_backoff=0.1, max_concurrent_requests=4), input_batch_size=8
    )
    outage: dict[str, float] = {}

    def restart() -> None:
        deadline = time.monotonic() + 30
        while first.stats()["by_status"].get("200", 0) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        outage["answered_before"] = first.stats()["by_status"].get("200", 0)
        first.stop()
        outage["stopped"] = time.monotonic()
        time.sleep(1.5)
        second.start()
        outage["restarted"] = time.monotonic()

    restarter = threading.Thread(target=restart, name="restarter")
    restarter.start()
    try:
        state, result = run(task, input_rows, tmp_path, retry_delay_seconds=0.5, retries=6)
    finally:
        restarter.join(30)
        first.stop()
        second.stop()

    assert second.base_url == first.base_url and outage["restarted"] - outage["stopped"] >= 1.5
    assert state.name == "Completed", state.message
    assert check_rows(result, input_rows, 1, task.name) == []
    before, after = first.stats(), second.stats()
    assert set(before["by_status"]) == {"200"} and set(after["by_status"]) == {"200"}
    assert 20 <= outage["answered_before"] < 80 and after["requests"] > 0
    # no batch had to be re-run, and no answer was bought twice
    runs = batch_runs(state.state_details.flow_run_id, 10)
    assert len(runs) == 10 and all(r.state.is_completed() and r.run_count == 1 for r in runs)
    assert before["by_status"]["200"] + after["by_status"]["200"] == 80


# -- 6. malformed, empty, garbage, no-choices answers --------------------------------------------


def test_text_generation_flow_keeps_empty_answers_as_fallbacks_and_retries_broken_bodies(sim, tmp_path, monkeypatch):
    """The main job as users run it: `flows/text_generation.py` pointed at a misbehaving server."""
    from distilflow.flows.text_generation import TextGenerationParams, text_generation

    sim.configure(empty_fraction=0.1, malformed_fraction=0.1, garbage_fraction=0.08, no_choices_fraction=0.07,
                  fault_seed=21, latency=0.01)
    monkeypatch.setenv("OPENAI_BASE_URL", sim.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-simulated")
    source = tmp_path / "instructions.jsonl"
    input_rows = instructions(60, "flow")
    source.write_text("".join(json.dumps(r) + "\n" for r in input_rows))
    output = tmp_path / "rows.jsonl"
    params = TextGenerationParams(
        input=str(source), output=str(output), num_generations=2, model={"provider": "openai"},
        run={"batch_size": 8, "result_storage": str(tmp_path / "results")},
    )
    faults, statuses = replay(sim.config, 60)  # n=2: one request per instruction
    assert faults["empty"] and faults["malformed"] and faults["garbage"] and faults["no_choices"]

    state = text_generation(params, return_state=True)

    fallbacks = 2 * faults["empty"]  # both choices of an empty answer
    assert state.name == FALLBACK_STATE_NAME, state.message
    assert state.message.startswith(f"{fallbacks} generations kept raw output (text_generation_0: {fallbacks}).")
    assert state.result()["rows"] == 120
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == 120
    assert Counter(r["instruction"] for r in rows) == {r["instruction"]: 2 for r in input_rows}
    fallen = [r for r in rows if "fallback_reason_text_generation_0" in r["distilabel_metadata"]]
    assert len(fallen) == fallbacks
    for row in fallen:
        assert row["generation"] is None
        assert row["distilabel_metadata"]["fallback_reason_text_generation_0"] == EMPTY_REASON
        assert row["distilabel_metadata"]["raw_output_text_generation_0"] == ""
    # a text task cannot tell malformed text from text: kept as a generation, not a fallback
    assert sum(r["generation"] == "<<malformed>>" for r in rows) == 2 * faults["malformed"]
    assert all(r["generation"] for r in rows if r not in fallen)
    stats = sim.stats()
    # garbage and no-choices answers were retried: answered 200, but not rows
    assert stats["by_status"] == dict(statuses) == {"200": 60 + faults["garbage"] + faults["no_choices"]}
    assert stats["faults"] == payload_faults(faults)


def test_judge_malformed_and_empty_answers_become_fallbacks_broken_bodies_are_retried(sim, tmp_path):
    sim.configure(malformed_fraction=0.12, empty_fraction=0.08, garbage_fraction=0.1, no_choices_fraction=0.1,
                  fault_seed=3, latency=0.01)
    input_rows = [{**r, "generations": [f"answer {i}", f"other answer {i}"]}
                  for i, r in enumerate(instructions(70, "judge"))]
    judge = UltraFeedback(name="judge", llm=client(sim.base_url), input_batch_size=10, use_default_structured_output=True)
    faults, statuses = replay(sim.config, 70)
    assert faults["malformed"] and faults["empty"] and faults["garbage"] and faults["no_choices"]

    state, result = run(judge, input_rows, tmp_path)

    assert state.name == FALLBACK_STATE_NAME, state.message
    fallbacks = faults["malformed"] + faults["empty"]
    assert state.message.startswith(f"{fallbacks} generations kept raw output (judge: {fallbacks}).")
    fallen = check_rows(result, input_rows, 1, "judge")
    reasons = Counter(r["distilabel_metadata"]["fallback_reason_judge"].split(" (")[0] for r in fallen)
    assert reasons == {"UnparsableOutput: the answer is not a JSON object": faults["malformed"],
                       EMPTY_REASON: faults["empty"]}
    for row in fallen:  # an empty answer has no columns; an unparsable one has distilabel's None lists
        empty = row["distilabel_metadata"]["fallback_reason_judge"] == EMPTY_REASON
        assert row["ratings"] == (None if empty else [None, None])
    for row in result.rows:
        if row not in fallen:
            assert len(row["ratings"]) == 2 and all(1 <= r <= 5 for r in row["ratings"])
    assert result.steps[0].counts.fallbacks == fallbacks and result.steps[0].counts.generations == 70
    stats = sim.stats()
    assert stats["by_status"] == dict(statuses) == {"200": 70 + faults["garbage"] + faults["no_choices"]}
    assert stats["faults"] == payload_faults(faults)
    # the batch states say it too
    runs = batch_runs(state.state_details.flow_run_id, 7)
    with_fallbacks = [r for r in runs if r.state.name == FALLBACK_STATE_NAME]
    assert with_fallbacks and all(r.state.is_completed() for r in runs)
    assert all("generations kept raw output" in r.state.message for r in with_fallbacks)


def test_an_answer_without_choices_is_retried_then_a_transient_error_never_a_crash_or_a_loop(sim):
    chat = [{"role": "user", "content": "hi"}]
    sim.configure(fault_script=["no_choices", "no_choices", "ok"])
    llm = client(sim.base_url)
    llm.load()
    (out,) = llm.generate([chat], num_generations=2)
    assert len(out["generations"]) == 2 and all(out["generations"])
    assert sim.stats()["by_status"] == {"200": 3}

    sim.reset()
    sim.configure(fault_script=[], no_choices_fraction=1.0)
    stubborn = client(sim.base_url, max_retries=2)
    stubborn.load()
    with pytest.raises(ModelRequestError) as failed:
        stubborn.generate([chat])
    assert failed.value.transient and failed.value.status_code is None
    assert "failed after 2 retries: MalformedAnswer: the answer has no choices: {" in str(failed.value)
    images = OpenAIImageGeneration(model="sim-image", base_url=sim.base_url, max_retries=2, retry_backoff=0.01)
    images.load()
    with pytest.raises(ModelRequestError, match="MalformedAnswer: the answer has no data") as failed:
        images.generate(["a cat"])
    assert failed.value.transient
    assert sim.stats()["requests"] == 6


# -- 7. everything at once -----------------------------------------------------------------------


def test_combined_storm_counts_add_up(sim, tmp_path):
    sim.configure(
        rate_limit_fraction=0.08, server_error_fraction=0.05, unavailable_fraction=0.05, timeout_fraction=0.04,
        reset_fraction=0.05, garbage_fraction=0.04, no_choices_fraction=0.03, empty_fraction=0.06,
        malformed_fraction=0.05, fault_seed=42, hang_seconds=10, retry_after=0.05, latency=0.01,
        latency_jitter=0.02, max_concurrent_requests=12,  # and a quota, whose 429s draw no fault
    )
    input_rows = instructions(100, "mixed")
    task = TextGeneration(
        name="gen", llm=client(sim.base_url, timeout=3.0, max_retries=25, max_concurrent_requests=24),
        input_batch_size=10, num_generations=2,
    )
    faults, statuses = replay(sim.config, 100)
    assert all(faults[kind] for kind in (429, 500, 503, "timeout", "reset", "garbage", "no_choices", "empty", "malformed"))

    state, result = run(task, input_rows, tmp_path)

    fallbacks = 2 * faults["empty"]
    assert state.name == FALLBACK_STATE_NAME, state.message
    assert state.message.startswith(f"{fallbacks} generations kept raw output (gen: {fallbacks}).")
    fallen = check_rows(result, input_rows, 2, "gen", fallback_reason=EMPTY_REASON)
    assert len(fallen) == fallbacks
    assert sum(r["generation"] == "<<malformed>>" for r in result.rows) == 2 * faults["malformed"]
    summary = result.steps[0]
    assert (summary.rows_in, summary.rows_out, summary.counts.generations) == (100, 200, 200)
    assert summary.completed == 10 and summary.failed == [] and summary.not_run == 0
    stats = settled(sim, "499", statuses["499"])
    quota_refusals = stats["by_status"].get("429", 0) - statuses["429"]
    assert quota_refusals >= 0
    assert {**stats["by_status"], "429": statuses["429"]} == dict(statuses)
    assert stats["requests"] == sum(statuses.values()) + quota_refusals
    assert stats["faults"] == payload_faults(faults)
    assert stats["early_retries"] == 0 and stats["max_in_flight"] <= 12
    assert {r.run_count for r in batch_runs(state.state_details.flow_run_id, 10)} == {1}


# -- the adaptive limit when a batch fails -------------------------------------------------------


async def test_a_waiter_cancelled_with_its_failed_batch_passes_its_slot_on():
    """A failed batch cancels its queued requests; the slot one of them was woken for must not be lost
    (with the limit down to 1 after 429s, that hung every other batch)."""
    limit = AdaptiveLimit(ceiling=1)
    await limit.acquire()
    of_failed_batch = asyncio.ensure_future(limit.acquire())
    of_other_batch = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0.01)
    limit.release()  # wakes the first waiter...
    of_failed_batch.cancel()  # ...whose batch fails before it runs
    await asyncio.wait_for(of_other_batch, 2)
    assert limit.in_flight == 1
