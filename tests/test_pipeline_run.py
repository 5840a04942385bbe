"""Pipelines run as one Prefect flow run: a real Prefect API and the simulator over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from flow_runs import llm
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.sorting import FlowRunSort
from prefect.settings import PREFECT_API_URL
from test_runner_prefect import artifacts, task_runs

from distilflow.steps.tasks import TextGeneration
from distilflow.errors import DistilflowUserError
from distilflow.pipeline import Pipeline, sample_n_steps
from distilflow.runner import RunOptions
from distilflow.steps import CombineOutputs, GeneratorStep, GlobalStep, GroupColumns, Step, StepInput, step

pytestmark = pytest.mark.usefixtures("prefect_api")


class Questions(GeneratorStep):
    count: int = 10

    @property
    def outputs(self):
        return ["instruction"]

    def process(self, offset: int = 0):
        rows = [{"instruction": f"question {i}"} for i in range(self.count)]
        for start in range(offset, len(rows), self.batch_size):
            yield rows[start : start + self.batch_size], start + self.batch_size >= len(rows)


class Pair(Step):
    """Puts the generations of its branches side by side; refuses rows that do not line up."""

    inputs = ["instruction", "generation"]
    outputs = ["generations"]

    def process(self, *inputs: StepInput):
        for rows in zip(*inputs, strict=True):
            assert len({row["instruction"] for row in rows}) == 1, rows
        yield [{"instruction": rows[0]["instruction"], "generations": [r["generation"] for r in rows],
                "models": [r["model_name"] for r in rows]} for rows in zip(*inputs)]


class Census(GlobalStep):
    inputs = ["generations"]
    outputs = ["count", "instructions"]

    def process(self, inputs: StepInput):
        yield [{"count": len(inputs), "instructions": sorted(row["instruction"] for row in inputs)}]


def options(tmp_path: Path, **more: Any) -> RunOptions:
    return RunOptions(result_storage=str(tmp_path / "results"), retry_delay_seconds=0, **more)


def latest_flow_run(name: str):
    with get_client(sync_client=True) as client:
        (found,) = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[name])), sort=FlowRunSort.START_TIME_DESC, limit=1
        )
    return found


def test_branches_run_at_the_same_time_and_a_merge_gets_matching_batches(sim, tmp_path):
    sim.configure(latency=0.3, latency_jitter=0.3)  # batches finish out of order
    with Pipeline(name="branches") as pipeline:
        load = Questions(count=10, batch_size=3)
        gen_a = TextGeneration(name="gen_a", llm=llm(sim, model="model-a"))
        gen_b = TextGeneration(name="gen_b", llm=llm(sim, model="model-b"))
        pair = Pair(name="pair")
        census = Census(name="census")
        load >> [gen_a, gen_b] >> pair >> census
    distiset = pipeline.run(options=options(tmp_path))

    assert sim.stats()["requests"] == 20
    # both branches' requests of a batch were in flight together: the branches ran at once
    assert sim.stats()["max_in_flight"] >= 6
    assert distiset.rows() == [{"count": 10, "instructions": sorted(f"question {i}" for i in range(10))}]

    flow_run = latest_flow_run("branches")
    assert flow_run.state.is_completed()
    runs = task_runs(flow_run.id, expected=4 * 5 + 1)
    assert sorted(runs) == sorted(
        [f"{s}[{i}]" for s in ("questions_0", "gen_a", "gen_b", "pair") for i in range(1, 5)] + ["census[1]"]
    )
    # the run's graph: each task run waited for the batches it was made from
    ids = {run.id: name for name, run in runs.items()}

    def parents(name: str) -> list[str]:
        return sorted(ids[ref.id] for ref in runs[name].task_inputs.get("wait_for", []))

    assert parents("gen_a[2]") == ["questions_0[2]"]
    assert parents("pair[3]") == ["gen_a[3]", "gen_b[3]"]
    assert parents("questions_0[1]") == []


def test_a_merge_lines_up_rows_of_every_batch_whatever_order_they_finish(sim, tmp_path):
    sim.configure(latency=0.05, latency_jitter=0.4)
    with Pipeline(name="merge") as pipeline:
        load = Questions(count=12, batch_size=2)
        gens = [TextGeneration(name=f"gen_{m}", llm=llm(sim, model=f"model-{m}")) for m in "abc"]
        load >> gens >> Pair(name="pair")
    rows = pipeline.run(options=options(tmp_path)).rows()
    assert [row["instruction"] for row in rows] == [f"question {i}" for i in range(12)]
    assert all(row["models"] == ["model-a", "model-b", "model-c"] for row in rows)


def test_routing_sends_each_batch_to_one_generator_and_a_rerun_sends_nothing(sim, tmp_path):
    def build() -> Pipeline:
        with Pipeline(name="routed") as pipeline:
            load = Questions(count=12, batch_size=2)
            gens = [TextGeneration(name=f"gen_{m}", llm=llm(sim, model=f"model-{m}")) for m in "abc"]
            load >> sample_n_steps(1) >> gens
        return pipeline

    first = build().run(options=options(tmp_path))
    assert sim.stats()["requests"] == 12
    per_leaf = {name: [row["instruction"] for row in splits["train"]] for name, splits in first.items()}
    assert sorted(q for rows in per_leaf.values() for q in rows) == sorted(f"question {i}" for i in range(12))
    assert sum(1 for rows in per_leaf.values() if rows) >= 2  # batches went to different generators

    sim.reset()
    again = build().run(options=options(tmp_path))
    assert sim.stats()["requests"] == 0  # every batch went where it went before: all answers cached
    assert {name: [row["instruction"] for row in s["train"]] for name, s in again.items()} == per_leaf


def test_run_time_parameters_and_dataset_feed_the_first_steps(sim, tmp_path):
    with Pipeline(name="with-dataset") as pipeline:
        gen = TextGeneration(name="gen", llm=llm(sim))
        census = Census(name="census", input_mappings={"generations": "generation"})
        gen >> census
    rows = [{"instruction": f"q{i}"} for i in range(5)]
    distiset = pipeline.run(
        parameters={"gen": {"llm": {"generation_kwargs": {"max_new_tokens": 7}}}}, dataset=rows, dataset_batch_size=2,
        options=options(tmp_path),
    )
    assert gen.llm.generation_kwargs == {"max_new_tokens": 7}
    assert distiset.rows()[0]["count"] == 5
    assert sim.stats()["requests"] == 5
    with pytest.raises(DistilflowUserError, match=r"parameters for \['nope'\].*key the parameters by step name"):
        pipeline.run(parameters={"nope": {}}, dataset=rows, options=options(tmp_path))


@pytest.mark.parametrize("kind", ["list", "datasets.Dataset", "pandas.DataFrame"])
def test_the_dataset_may_be_a_list_a_hugging_face_dataset_or_a_dataframe(kind, sim, tmp_path):
    import datasets
    import pandas

    rows = [{"instruction": f"q{i}"} for i in range(5)]
    given = {"list": rows, "datasets.Dataset": datasets.Dataset.from_list(rows),
             "pandas.DataFrame": pandas.DataFrame(rows)}[kind]
    with Pipeline() as pipeline:  # no name: distilabel's `pipeline_<steps>`
        TextGeneration(name="gen", llm=llm(sim))
    assert pipeline.name == "pipeline_gen"
    out = pipeline.run(dataset=given, dataset_batch_size=2, options=options(tmp_path)).rows()
    assert [row["instruction"] for row in out] == [row["instruction"] for row in rows]
    assert sim.stats()["requests"] == 5
    with pytest.raises(DistilflowUserError, match=r"run\(dataset=...\) got a str; give a list of dicts"):
        pipeline.run(dataset="rows.jsonl", options=options(tmp_path))


def test_fallbacks_are_counted_per_step_in_the_final_state(sim, tmp_path):
    sim.configure(empty_fraction=0.5, fault_seed=7)
    with Pipeline(name="fallbacks") as pipeline:
        load = Questions(count=20, batch_size=5)
        load >> [TextGeneration(name="gen_a", llm=llm(sim, model="model-a")),
                 TextGeneration(name="gen_b", llm=llm(sim, model="model-b"))]
    # half the answers empty: above the default max_fallback_share, allowed here to see the counts
    distiset = pipeline.run(options=options(tmp_path, max_fallback_share=1.0))
    fell_back = {name: sum(row["generation"] is None for row in s["train"]) for name, s in distiset.items()}
    assert all(count > 0 for count in fell_back.values())
    state = latest_flow_run("fallbacks").state
    assert state.name == "CompletedWithFallbacks"
    assert f"gen_a: {fell_back['gen_a']}" in state.message and f"gen_b: {fell_back['gen_b']}" in state.message


def test_rows_whose_requests_failed_are_counted_per_step_and_kept(sim, tmp_path):
    sim.configure(server_error_fraction=0.3, fault_seed=3)
    with Pipeline(name="failed-rows") as pipeline:
        load = Questions(count=20, batch_size=5)
        load >> [TextGeneration(name="gen_a", llm=llm(sim, model="model-a", max_retries=0)),
                 TextGeneration(name="gen_b", llm=llm(sim, model="model-b", max_retries=0))]
    distiset = pipeline.run(options=options(tmp_path, max_failed_fraction=1.0, retries=0))
    failed = {name: sum(row["distilabel_metadata"].get("error_" + name) is not None for row in s["train"])
              for name, s in distiset.items()}
    assert all(len(s["train"]) == 20 for s in distiset.values())  # a row fails alone; none is dropped
    assert all(count > 0 for count in failed.values())
    state = latest_flow_run("failed-rows").state
    assert state.name == "CompletedWithFailedRows"
    for name, count in failed.items():
        assert f"{name}: {count} of 20 rows failed" in state.message


class Note(GlobalStep):
    """Sees every row at once and keeps each one (arena-hard's reference answers are loaded so)."""

    inputs = ["instruction"]
    outputs = ["note"]

    def process(self, inputs: StepInput):
        yield [{**row, "note": f"{row['instruction']} of {len(inputs)}"} for row in inputs]


class KeepEven(GlobalStep):
    inputs = ["instruction"]
    outputs = []

    def process(self, inputs: StepInput):
        yield [row for row in inputs if int(row["instruction"].split()[-1]) % 2 == 0]


class Echo(Step):
    inputs = ["instruction"]
    outputs = ["echo"]

    def process(self, *inputs: StepInput):
        yield [{**row, "echo": row["instruction"]} for row in inputs[0]]


def test_branches_that_cut_different_batches_are_paired_row_by_row(sim, tmp_path):
    with Pipeline(name="row-merge") as pipeline:
        gen_a = TextGeneration(name="gen_a", llm=llm(sim, model="model-a"))
        gen_b = TextGeneration(name="gen_b", llm=llm(sim, model="model-b"))
        Questions(name="small", count=10, batch_size=3) >> gen_a
        Questions(name="large", count=10, batch_size=4) >> gen_b
        [gen_a, gen_b] >> Pair(name="pair", input_batch_size=6)  # Pair refuses rows that do not line up
    rows = pipeline.run(options=options(tmp_path)).rows()
    assert [row["instruction"] for row in rows] == [f"question {i}" for i in range(10)]
    assert all(row["models"] == ["model-a", "model-b"] for row in rows)
    runs = task_runs(latest_flow_run("row-merge").id, expected=4 + 3 + 4 + 3 + 2)
    assert sorted(name for name in runs if name.startswith("pair")) == ["pair[1]", "pair[2]"]  # 6 rows, then 4


def test_a_branch_through_a_global_step_is_paired_with_the_others_once_it_ends(sim, tmp_path):
    with Pipeline(name="global-merge") as pipeline:
        load = Questions(count=7, batch_size=2)
        gen = TextGeneration(name="gen", llm=llm(sim))
        load >> [gen, Note(name="note")] >> CombineOutputs(name="combine")
    rows = pipeline.run(options=options(tmp_path)).rows()
    assert [(row["instruction"], row["note"]) for row in rows] == [(f"question {i}", f"question {i} of 7")
                                                                    for i in range(7)]
    assert all(row["generation"] for row in rows) and sim.stats()["requests"] == 7


def test_branches_that_end_with_different_row_counts_are_not_paired(sim, tmp_path):
    with Pipeline(name="uneven-merge") as pipeline:
        load = Questions(count=8, batch_size=4)
        combine = CombineOutputs(name="combine")
        load >> [Echo(name="echo"), KeepEven(name="even")] >> combine >> TextGeneration(name="after", llm=llm(sim))
    with pytest.raises(DistilflowUserError) as raised:
        pipeline.run(options=options(tmp_path))
    assert "Step 'combine': its branches made different numbers of rows {'echo': 8, 'even': 4}" in str(raised.value)
    assert sim.stats()["requests"] == 0  # no mismatched row went on to the model


def test_a_step_that_raises_passes_its_rows_on_with_none_outputs_counted_as_failed(sim, tmp_path):
    @step(inputs=["instruction"], outputs=["response"])
    def FailAlways(_: StepInput):
        raise RuntimeError("this step always fails")

    @step(inputs=["instruction"], outputs=["response"])
    def Succeed(inputs: StepInput):
        yield [{**row, "response": "fine"} for row in inputs]

    with Pipeline(name="step-fails") as pipeline:  # distilabel's test_branching_missalignment
        load = Questions(count=20, batch_size=10)
        load >> [FailAlways(name="fail"), Succeed(name="ok")] >> GroupColumns(name="group", columns=["response"])
    rows = pipeline.run(options=options(tmp_path)).rows()
    assert [row["grouped_response"] for row in rows] == [[None, "fine"]] * 20
    assert all(row["distilabel_metadata"]["error_fail"]["message"] == "this step always fails" for row in rows)
    state = latest_flow_run("step-fails").state
    assert state.name == "CompletedWithFailedRows" and "fail: 20 of 20 rows failed" in state.message


class Shuffle(Step):
    """Makes different rows every time it runs (a sampler, a shuffle, a stamp)."""

    inputs = ["instruction"]
    outputs = ["instruction"]

    def process(self, inputs: StepInput):
        yield [{**row, "instruction": f"{row['instruction']} #{uuid.uuid4().hex[:8]}"} for row in inputs]


def test_a_rerun_gets_the_rows_a_step_made_before_and_buys_no_answer_again(sim, tmp_path):
    def build(shuffle_cache: bool = True) -> Pipeline:
        with Pipeline(name="step-cache") as pipeline:
            Questions(count=6, batch_size=3) >> Shuffle(name="shuffle", use_cache=shuffle_cache) >> TextGeneration(
                name="gen", llm=llm(sim))
        return pipeline

    first = build().run(options=options(tmp_path)).rows()
    assert sim.stats()["requests"] == 6
    again = build().run(options=options(tmp_path)).rows()
    assert again == first and sim.stats()["requests"] == 6  # the same rows, every answer from the cache
    states = {name: run.state.name for name, run in task_runs(latest_flow_run("step-cache").id, expected=6).items()}
    assert states["shuffle[1]"] == states["shuffle[2]"] == "Cached"
    remade = build(shuffle_cache=False).run(options=options(tmp_path)).rows()  # the step's own use_cache=False
    assert remade != first and sim.stats()["requests"] == 12  # new rows, so new requests
    assert build().run(options=options(tmp_path), use_cache=False).rows() != first  # and the run's use_cache=False


class Histogram(GlobalStep):
    inputs = ["instruction"]
    outputs = []

    def process(self, inputs: StepInput):
        counts = {"rows": len(inputs)}
        self.save_artifact("histogram", lambda folder: (folder / "counts.json").write_text(json.dumps(counts)),
                           metadata={"kind": "counts"})
        yield inputs


def test_a_step_saves_artifacts_beside_the_runs_rows(sim, tmp_path):
    with Pipeline(name="with-artifacts") as pipeline:
        Questions(count=5) >> Histogram(name="histogram")
    distiset = pipeline.run(options=options(tmp_path))
    folder = distiset.artifacts_path / "histogram" / "histogram"
    assert json.loads((folder / "counts.json").read_text()) == {"rows": 5}
    assert (folder / "metadata.json").read_text() == '{"kind":"counts"}'
    where = distiset.artifacts_path.parent  # $DISTILFLOW_HOME/pipelines/<pipeline>/<flow run id>
    assert (where.parent.parent.name, where.parent.name) == ("pipelines", "with-artifacts")
    assert where.name == str(latest_flow_run("with-artifacts").id)


def test_the_ui_shows_the_first_rows_of_each_leaf(sim, tmp_path):
    sim.configure(latency=0.05, latency_jitter=0.5)  # batches finish out of order; the preview is still the first rows
    with Pipeline(name="preview") as pipeline:
        Questions(count=12, batch_size=2) >> [TextGeneration(name="gen_a", llm=llm(sim)), Shout(name="shout")]
    pipeline.run(options=options(tmp_path))
    run_id = latest_flow_run("preview").id
    found = artifacts(run_id, ("preview-preview-gen-a", "preview-preview-shout"))
    assert set(found) == {"preview-preview-gen-a", "preview-preview-shout"}
    table = json.loads(found["preview-preview-shout"]["data"])
    assert [row["instruction"] for row in table] == [f"question {i}" for i in range(5)]
    assert table[0]["shout"] == "QUESTION 0"


class Shout(Step):
    inputs = ["instruction"]
    outputs = ["shout"]

    def process(self, inputs: StepInput):
        yield [{**row, "shout": row["instruction"].upper()} for row in inputs]


def test_a_bad_graph_is_refused_before_any_flow_run_or_request(sim, tmp_path):
    with Pipeline(name="refused-graph") as pipeline:
        Questions() >> TextGeneration(name="gen", llm=llm(sim), input_mappings={"instruction": "prompt"})
    with pytest.raises(DistilflowUserError, match=r"Step 'gen' needs column\(s\) \['prompt'\]"):
        pipeline.run(options=options(tmp_path))
    assert sim.stats()["requests"] == 0
    with get_client(sync_client=True) as client:
        assert client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["refused-graph"]))) == []


def test_a_bad_row_in_a_later_batch_of_the_dataset_is_refused_before_any_request(sim, tmp_path):
    with Pipeline(name="bad-dataset-row") as pipeline:
        gen = TextGeneration(name="gen", llm=llm(sim))
        gen >> Census(name="census", input_mappings={"generations": "generation"})
    rows = [{"instruction": f"q{i}"} for i in range(9)] + [{"instruction": 7}]
    with pytest.raises(DistilflowUserError, match=r"Task 'gen', row 9: .*must be a string. Got: 7"):
        pipeline.run(dataset=rows, dataset_batch_size=2, options=options(tmp_path))
    assert sim.stats()["requests"] == 0


def test_inside_a_flow_the_pipeline_runs_in_that_flow_run(sim, tmp_path):
    with Pipeline(name="inner") as pipeline:
        Questions(count=4, batch_size=2) >> TextGeneration(name="gen", llm=llm(sim))

    @flow(name="outer-flow")
    def outer():
        return pipeline.run(options=options(tmp_path)).rows()

    state = outer(return_state=True)
    assert len(state.result()) == 4
    runs = task_runs(state.state_details.flow_run_id, expected=4)
    assert sorted(runs) == ["gen[1]", "gen[2]", "questions_0[1]", "questions_0[2]"]


def test_two_pipelines_in_one_flow_keep_artifacts_of_their_own(sim, tmp_path):
    def pipeline(name: str, count: int) -> Pipeline:
        with Pipeline(name=name) as built:
            Questions(count=count, batch_size=2) >> TextGeneration(name="gen", llm=llm(sim))
        return built

    @flow(name="two-pipelines")
    def both():
        return [len(pipeline(name, count).run(options=options(tmp_path)).rows()) for name, count in (("first", 2), ("second", 3))]

    state = both(return_state=True)
    assert state.result() == [2, 3]
    found = artifacts(state.state_details.flow_run_id, ("two-pipelines-first-summary", "two-pipelines-second-summary"))
    assert set(found) == {"two-pipelines-first-summary", "two-pipelines-second-summary"}
    rows_in = {key: [row["rows in"] for row in json.loads(a["data"]) if row["step"] == "gen"] for key, a in found.items()}
    assert rows_in == {"two-pipelines-first-summary": [2], "two-pipelines-second-summary": [3]}


def test_two_run_tasks_calls_in_one_flow_keep_artifacts_of_their_own(sim, tmp_path):
    from distilflow.runner import run_tasks

    @flow(name="two-chains")
    def both():
        rows = [{"instruction": f"q{i}"} for i in range(3)]
        first = run_tasks(TextGeneration(llm=llm(sim)), rows, options(tmp_path))
        second = run_tasks(TextGeneration(llm=llm(sim)), rows[:2], options(tmp_path))
        return [len(first.rows), len(second.rows)]

    state = both(return_state=True)
    assert state.result() == [3, 2]
    found = artifacts(state.state_details.flow_run_id, ("two-chains-summary", "two-chains-2-summary"))
    rows_in = {key: json.loads(a["data"])[0]["rows in"] for key, a in found.items()}
    assert rows_in == {"two-chains-summary": 3, "two-chains-2-summary": 2}


def test_a_pipeline_run_from_a_thread_inside_a_flow_still_runs_as_task_runs(sim, tmp_path):
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    def build(name: str) -> Pipeline:
        with Pipeline(name=name) as pipeline:
            Questions(count=2, batch_size=2) >> TextGeneration(name="gen", llm=llm(sim))
        return pipeline

    @flow(name="threads-flow")
    def outer():
        with ThreadPoolExecutor(2) as pool:
            # with the flow's context handed over: inside this flow run
            inside = pool.submit(contextvars.copy_context().run, lambda: build("in-thread").run(options=options(tmp_path)))
            # a bare thread has no flow context: a flow run of its own, still task runs
            alone = pool.submit(lambda: build("own-flow-run").run(options=options(tmp_path)))
            return len(inside.result().rows()), len(alone.result().rows())

    state = outer(return_state=True)
    assert state.result() == (2, 2)
    assert sorted(task_runs(state.state_details.flow_run_id, expected=2)) == ["gen[1]", "questions_0[1]"]
    own = latest_flow_run("own-flow-run")
    assert own.id != state.state_details.flow_run_id
    assert sorted(task_runs(own.id, expected=2)) == ["gen[1]", "questions_0[1]"]


KILLED_PIPELINE = textwrap.dedent('''
    import sys
    from distilflow.steps.tasks import TextGeneration
    from distilflow.models import OpenAILLM
    from distilflow.pipeline import Pipeline
    from distilflow.runner import RunOptions
    from distilflow.steps import GeneratorStep

    class Questions(GeneratorStep):
        @property
        def outputs(self):
            return ["instruction"]

        def process(self, offset=0):
            rows = [{"instruction": f"question {i}"} for i in range(60)]
            for start in range(offset, 60, self.batch_size):
                yield rows[start : start + self.batch_size], start + self.batch_size >= 60

    with Pipeline(name="killed") as pipeline:
        llm = OpenAILLM(model="sim", base_url=sys.argv[1], max_concurrent_requests=4)
        Questions(batch_size=10) >> TextGeneration(name="gen", llm=llm)
    pipeline.run(options=RunOptions(result_storage=sys.argv[2], progress=False))
''')


def test_a_killed_pipeline_resumes_sending_only_what_was_never_answered(sim, tmp_path):
    from distilflow.storage import answer_store

    sim.configure(latency=0.2)
    script = tmp_path / "killed.py"
    script.write_text(KILLED_PIPELINE)
    results = str(tmp_path / "results")
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    process = subprocess.Popen([sys.executable, str(script), sim.base_url, results], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while sim.stats()["requests"] < 20 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    sent_before = sim.stats()["requests"]
    stored = len(answer_store(results).keys())
    assert 20 <= sent_before < 60 and 0 < stored <= sent_before

    sim.reset()
    sim.configure(latency=0.0)
    subprocess.run([sys.executable, str(script), sim.base_url, results], env=env, cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)
    assert sim.stats()["requests"] == 60 - stored  # only the requests never answered are sent again
    assert len(answer_store(results).keys()) == 60
