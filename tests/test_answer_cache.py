"""The answer cache: keyed by what is sent, rows always made by the current code, failures per row.

Against the simulator over real HTTP and a real Prefect API. Request counts come from the
simulator's own counters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
import pytest
from flow_runs import llm, rows, run
from prefect.settings import PREFECT_API_URL
from pydantic import BaseModel

from distilflow.storage import answer_store
from distilflow.errors import DistilflowUserError
from distilflow.steps.tasks import Task, TextGeneration
from distilflow.answers import request_key
from distilflow.models import DummyAsyncLLM, OpenAILLM
from distilflow.runner import run_tasks
from distilflow.simulator import Simulator

ROOT = Path(__file__).resolve().parents[1]
# -- what the key sees -----------------------------------------------------------------------------

HELPER_PROMPT = "Answer briefly."


def system_prompt() -> str:  # a helper the task calls: its result is what matters, not its code
    return HELPER_PROMPT


class WithHelper(Task):
    @property
    def inputs(self):
        return ["instruction"]

    @property
    def outputs(self):
        return ["generation"]

    def format_input(self, input):
        return [{"role": "system", "content": system_prompt()}, {"role": "user", "content": input["instruction"]}]

    def format_output(self, output, input=None):
        return {"generation": output}


class FromFile(Task):
    """A template read from a file at load(), as distilabel's built-in tasks do."""

    path: str
    @property
    def inputs(self):
        return ["instruction"]

    @property
    def outputs(self):
        return ["generation"]

    def load(self):
        super().load()
        self._template = Path(self.path).read_text()

    def format_input(self, input):
        return [{"role": "user", "content": self._template.replace("{x}", input["instruction"])}]

    def format_output(self, output, input=None):
        return {"generation": output}


@pytest.mark.usefixtures("prefect_api")
def test_a_prompt_in_a_helper_or_a_file_is_in_the_key(sim, tmp_path, monkeypatch):
    state, _ = run(WithHelper(llm=llm(sim)), rows(4), tmp_path)
    assert state.name == "Completed" and sim.stats()["requests"] == 4
    run(WithHelper(llm=llm(sim)), rows(4), tmp_path)
    assert sim.stats()["requests"] == 4
    monkeypatch.setattr(sys.modules[__name__], "HELPER_PROMPT", "Answer at length.")
    run(WithHelper(llm=llm(sim)), rows(4), tmp_path)
    assert sim.stats()["requests"] == 8  # the system prompt changed: every request is new

    template = tmp_path / "template.txt"
    template.write_text("Say it plainly: {x}")
    run(FromFile(llm=llm(sim), path=str(template)), rows(4), tmp_path)
    run(FromFile(llm=llm(sim), path=str(template)), rows(4), tmp_path)
    assert sim.stats()["requests"] == 12
    template.write_text("Say it in verse: {x}")
    state, result = run(FromFile(llm=llm(sim), path=str(template)), rows(4), tmp_path)
    assert sim.stats()["requests"] == 16
    assert result.rows[0]["distilabel_metadata"]["raw_input_from_file_0"][0]["content"] == "Say it in verse: q 0"


USER_TASK = '''
import os, sys
from prefect import flow
from distilflow.steps.tasks import Task
from distilflow.models import OpenAILLM
from distilflow.runner import run_tasks

SYSTEM = os.environ["SYSTEM_PROMPT"]  # read once, at import: the prompt is not in any task field

class Ask(Task):
    @property
    def inputs(self):
        return ["instruction"]

    @property
    def outputs(self):
        return ["generation"]

    def format_input(self, input):
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": input["instruction"]}]

    def format_output(self, output, input=None):
        return {"generation": output}

@flow
def ask(base_url: str, storage: str):
    rows = [{"instruction": f"q {i}"} for i in range(5)]
    result = run_tasks(Ask(llm=OpenAILLM(model="sim", base_url=base_url)), rows, result_storage=storage)
    print(result.rows[0]["distilabel_metadata"]["raw_input_ask_0"][0]["content"])

if __name__ == "__main__":
    ask(sys.argv[1], sys.argv[2])
'''


@pytest.mark.usefixtures("prefect_api")
def test_a_module_level_prompt_change_resends_in_a_new_process(sim, tmp_path):
    """The issue's reproduction: SYSTEM = os.environ[...] at import, run with v1, then with v2."""
    script = tmp_path / "user_task.py"
    script.write_text(textwrap.dedent(USER_TASK))
    storage = tmp_path / "answers"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_API_URL"] = PREFECT_API_URL.value()

    def run_with(prompt: str) -> str:
        done = subprocess.run([sys.executable, str(script), sim.base_url, str(storage)], cwd=tmp_path,
                              env={**env, "SYSTEM_PROMPT": prompt}, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    assert "v1" in run_with("v1") and sim.stats()["requests"] == 5
    assert "v1" in run_with("v1") and sim.stats()["requests"] == 5  # same prompt: all from the cache
    assert "v2" in run_with("v2") and sim.stats()["requests"] == 10  # new prompt: every request re-sent


class Shout(Task):
    @property
    def inputs(self):
        return ["instruction"]

    @property
    def outputs(self):
        return ["generation"]

    def format_input(self, input):
        return [{"role": "user", "content": input["instruction"]}]

    def format_output(self, output, input=None):
        return {"generation": output.upper()}


class Whisper(Shout):
    def format_output(self, output, input=None):
        return {"generation": output.lower(), "length": len(output)}


@pytest.mark.usefixtures("prefect_api")
def test_a_format_output_change_rebuilds_rows_with_zero_requests(sim, tmp_path):
    _, first = run(Shout(name="say", llm=llm(sim), input_batch_size=3), rows(7), tmp_path)
    assert sim.stats()["requests"] == 7
    state, second = run(Whisper(name="say", llm=llm(sim), input_batch_size=3), rows(7), tmp_path)
    assert sim.stats()["requests"] == 7  # the same requests: every answer from the cache
    assert state.name == "Completed" and second.steps[0].cache_hits == 3
    for old, new in zip(first.rows, second.rows):
        assert new["generation"] == old["generation"].lower() and new["length"] == len(old["generation"])
        raw = "raw_output_say"
        assert new["distilabel_metadata"][raw] == old["distilabel_metadata"][raw]


class Verdict(BaseModel):
    label: str
    confidence: float


class Classify(Task):
    """A task with a pydantic class as a field, as distilabel's structured-output examples have."""

    schema_class: type[BaseModel] = Verdict
    @property
    def inputs(self):
        return ["instruction"]

    @property
    def outputs(self):
        return ["label"]

    def format_input(self, input):
        return ([{"role": "user", "content": input["instruction"]}], {"format": "json", "schema": self.schema_class})

    def format_output(self, output, input=None):
        return {"label": json.loads(output)["label"]}


@pytest.mark.usefixtures("prefect_api")
def test_a_class_valued_field_works_inside_and_outside_a_flow(sim, tmp_path):
    task = Classify(llm=llm(sim, generation_kwargs={"max_new_tokens": 512}))
    outside = run_tasks(task, rows(3), result_storage=str(tmp_path / "outside"))
    assert outside.complete and all(isinstance(r["label"], str) for r in outside.rows)
    state, inside = run(Classify(llm=llm(sim, generation_kwargs={"max_new_tokens": 512})), rows(3), tmp_path / "inside")
    assert state.name == "Completed", state.message
    assert [r["label"] for r in inside.rows] == [r["label"] for r in outside.rows]
    assert sim.stats()["requests"] == 6


def test_the_key_is_what_is_sent_not_the_key_or_address():
    a = OpenAILLM(model="m", base_url="http://127.0.0.1:1/v1", api_key="sk-one", timeout=5)
    b = OpenAILLM(model="m", base_url="http://10.0.0.1:8000/v1", api_key="sk-two", max_concurrent_requests=3)
    chat = [{"role": "user", "content": "hi"}]

    def key(client, **changes):
        sent = {"input": chat, "n": 1, "settings": client.generation_settings({}), "repeat": 0, "version": "1", **changes}
        return request_key(client.answer_identity(), sent["input"], sent["n"], sent["settings"], sent["repeat"], sent["version"])

    assert key(a) == key(b)  # another address, key, timeout or concurrency: the same answers
    assert "sk-" not in json.dumps(a.answer_identity(), default=str)
    assert key(a) != key(OpenAILLM(model="m", model_revision="awq"))  # the user says it is another model
    assert key(a) != key(OpenAILLM(model="m2"))
    assert key(a) != key(a, n=2) != key(a, version="2") != key(a, repeat=1)
    assert key(a) != key(OpenAILLM(model="m", generation_kwargs={"temperature": 0.5}),
                         settings=OpenAILLM(model="m").generation_settings({"temperature": 0.5}))
    # a changed default of the client is a changed request
    assert a.generation_settings({})["max_new_tokens"] == 128
    assert key(a) != key(a, settings={**a.generation_settings({}), "max_new_tokens": 256})


@pytest.mark.usefixtures("prefect_api")
def test_another_endpoint_for_the_same_model_shares_answers_unless_told_otherwise(tmp_path):
    with Simulator() as first, Simulator() as second:
        run(TextGeneration(llm=llm(first)), rows(4), tmp_path)
        state, _ = run(TextGeneration(llm=llm(second)), rows(4), tmp_path)
        assert first.stats()["requests"] == 4 and second.stats()["requests"] == 0
        state, _ = run(TextGeneration(llm=llm(second, model_revision="gpu-b")), rows(4), tmp_path)
        assert state.name == "Completed" and second.stats()["requests"] == 4


@pytest.mark.usefixtures("prefect_api")
def test_repeated_inputs_get_an_answer_each_and_keep_it(tmp_path):
    """The same prompt in many rows is sampled once per row (as without a cache), across batches."""
    model = DummyAsyncLLM(responses=[f"sample {i}" for i in range(100)])
    task = TextGeneration(llm=model, input_batch_size=2)
    same = [{"instruction": "Invent a persona."}] * 6
    _, first = run(task, same, tmp_path)
    samples = [r["generation"] for r in first.rows]
    assert len(set(samples)) == 6 and model.calls == 6
    state, again = run(task, same, tmp_path)
    assert model.calls == 6 and [r["generation"] for r in again.rows] == samples
    assert again.steps[0].cache_hits == 3


@pytest.mark.usefixtures("prefect_api")
def test_refresh_cache_asks_again_and_cache_false_stores_nothing(sim, tmp_path):
    run(TextGeneration(llm=llm(sim)), rows(3), tmp_path)
    run(TextGeneration(llm=llm(sim)), rows(3), tmp_path, refresh_cache=True)
    assert sim.stats()["requests"] == 6 and len(answer_store(str(tmp_path / "results"))) == 3
    run(TextGeneration(llm=llm(sim)), rows(3), tmp_path / "none", cache=False)
    assert sim.stats()["requests"] == 9 and len(answer_store(str(tmp_path / "none" / "results"))) == 0


# -- failures ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("prefect_api")
def test_a_bad_key_stops_the_run_after_the_first_answers(sim, tmp_path):
    sim.configure(api_key="sk-right")
    task = TextGeneration(llm=llm(sim, api_key="sk-wrong", max_retries=0), input_batch_size=5)
    state, error = run(task, rows(40), tmp_path, max_concurrent_batches=2)
    assert state.is_failed() and isinstance(error, DistilflowUserError)
    assert "HTTP 401" in state.message and "Check the API key" in state.message
    assert "sk-wrong" not in state.message
    assert sim.stats()["requests"] <= 10  # the first two batches at most, nothing after them
    assert len(answer_store(str(tmp_path / "results"))) == 0


@pytest.mark.usefixtures("prefect_api")
def test_an_unknown_model_stops_the_run_with_the_fix(sim, tmp_path):
    sim.configure(models=["only-this"])
    state, error = run(TextGeneration(llm=llm(sim, model="other")), rows(120), tmp_path, max_concurrent_batches=1)
    assert state.is_failed() and isinstance(error, DistilflowUserError)
    assert "HTTP 404" in state.message and f"GET {sim.base_url}/models" in state.message
    assert sim.stats()["requests"] <= 50


@pytest.mark.usefixtures("prefect_api")
def test_a_run_where_most_rows_fail_stops_early(sim, tmp_path):
    sim.configure(refuse_containing=["q"])  # every prompt refused: no use paying for the rest
    state, error = run(TextGeneration(llm=llm(sim)), rows(200), tmp_path, max_concurrent_batches=1)
    assert state.is_failed()
    assert "50 of 50 rows failed: HTTP 400 context_length_exceeded" in state.message
    assert "max_failed_fraction" in state.message and "3 batches not run" in state.message
    assert sim.stats()["requests"] == 50
    sim.reset()
    state, _ = run(TextGeneration(llm=llm(sim)), rows(200), tmp_path, max_failed_fraction=1.0)
    assert state.name == "CompletedWithFailedRows" and sim.stats()["by_status"]["400"] == 200


@pytest.mark.usefixtures("prefect_api")
def test_one_refused_row_among_200_from_the_command_line(sim, tmp_path):
    """199 complete rows and 1 failed row, exit status 3; the re-run sends exactly 1 request."""
    instructions = tmp_path / "in.jsonl"
    instructions.write_text("".join(json.dumps({"instruction": f"Question {i}"}) + "\n" for i in range(200)))
    sim.configure(refuse_containing=["Question 137"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "OPENAI_"))}
    env.update(PREFECT_API_URL=PREFECT_API_URL.value(), OPENAI_BASE_URL=sim.base_url, OPENAI_API_KEY="sk-test")
    output = tmp_path / "out.jsonl"
    command = [sys.executable, str(ROOT / "flows" / "text_generation.py"), "--input", str(instructions),
               "--output", str(output), "--run.result-storage", str(tmp_path / "answers"), "--run.batch-size", "50"]

    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 3, done.stderr[-3000:]
    assert "1 of 200 rows failed: HTTP 400 context_length_exceeded" in done.stderr
    written = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(written) == 200 and sim.stats()["requests"] == 200
    failed = [r for r in written if r["generation"] is None]
    assert [r["instruction"] for r in failed] == ["Question 137"]
    error = failed[0]["distilabel_metadata"]["error_text_generation_0"]
    assert error["status_code"] == 400 and error["code"] == "context_length_exceeded" and error["message"]

    sim.reset()
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 3 and sim.stats()["requests"] == 1  # only the failed row is asked again
    sim.configure(refuse_containing=[])
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sim.stats()["requests"] == 2 and "(3/4 batches from cache, 199 of 200 answers from cache)" in done.stdout
    assert all(json.loads(line)["generation"] for line in output.read_text().splitlines())


def test_a_refused_image_prompt_fails_its_row_alone(sim, tmp_path):
    from distilflow.steps.tasks import ImageGeneration
    from distilflow.models import OpenAIImageGeneration

    sim.configure(refuse_containing=["forbidden"])
    model = OpenAIImageGeneration(model="sim-images", base_url=sim.base_url, **{"retry_backoff": 0.01})
    task = ImageGeneration(image_generation_model=model, add_raw_output=False)
    prompts = [{"prompt": "a red square"}, {"prompt": "something forbidden"}, {"prompt": "a blue circle"}]
    result = run_tasks(task, prompts, result_storage=str(tmp_path))
    assert result.complete and result.failed_rows == 1
    assert [isinstance(r["image"], str) for r in result.rows] == [True, False, True]
    error = result.rows[1]["distilabel_metadata"]["error_image_generation_0"]
    assert error["status_code"] == 400 and error["code"] == "content_policy_violation"
    assert result.rows[1]["distilabel_metadata"]["raw_input_image_generation_0"] == "something forbidden"
    again = run_tasks(task, prompts, result_storage=str(tmp_path))
    assert sim.stats()["requests"] == 4 and again.rows[0] == result.rows[0]  # only the refused one again
