"""The runnable flows: in-process under a real Prefect API, and `python flows/<name>.py` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from distilflow.flows.apigen import APIGenParams, apigen
from distilflow.flows.deita import DeitaParams, deita
from distilflow.flows.image_generation import ImageGenerationParams, image_generation
from distilflow.flows.preference_dataset import PreferenceDatasetParams, preference_dataset
from distilflow.flows.text_generation import TextGenerationParams, text_generation

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_provider(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.usefixtures("prefect_api", "no_provider")
def test_text_generation_flow_writes_rows_and_reuses_the_cache(tmp_path):
    params = TextGenerationParams(
        output=str(tmp_path / "out.jsonl"), num_generations=2, group_generations=True,
        run={"batch_size": 10, "result_storage": str(tmp_path / "results")},
    )
    state = text_generation(params, return_state=True)
    assert state.name == "Completed", state.message
    rows = read(tmp_path / "out.jsonl")
    assert len(rows) == 24
    assert rows[0]["instruction"] == "What's the capital of Spain?"
    assert rows[0]["model_name"] == "distilflow-simulator"
    assert len(rows[0]["generation"]) == 2 and len(rows[0]["distilabel_metadata"]) == 2
    assert state.result()["rows"] == 24

    again = text_generation(params, return_state=True)
    assert "(3/3 batches from cache)" in again.message
    assert read(tmp_path / "out.jsonl") == rows


@pytest.mark.usefixtures("prefect_api", "no_provider")
def test_preference_flow_is_a_graph_of_generators_group_judge_and_pairs(tmp_path):
    params = PreferenceDatasetParams(
        output=str(tmp_path / "prefs.parquet"), limit=6,
        generators=[{"model": "gen-a"}, {"model": "gen-b"}, {"model": "gen-c", "temperature": 0.9}],
        run={"batch_size": 4, "result_storage": str(tmp_path / "results")},
    )
    state = preference_dataset(params, return_state=True)
    assert state.name == "Completed", state.message
    from distilflow.storage import read_rows

    rows = list(read_rows(str(tmp_path / "prefs.parquet")))
    assert len(rows) == 6
    for row in rows:
        assert row["generation_models"] == ["distilflow-simulator"] * 3  # the simulator answers for any model
        assert len(row["generations"]) == 3 and len(row["ratings"]) == 3 and len(row["rationales"]) == 3
        assert all(1 <= r <= 5 for r in row["ratings"])
        assert row["chosen_rating"] == max(row["ratings"]) and row["rejected_rating"] == min(row["ratings"])
        assert row["chosen"][0] == {"role": "user", "content": row["instruction"]}
        assert row["chosen"][1]["content"] in row["generations"] and row["prompt"] == row["instruction"]
        assert row["judge_model"] == "distilflow-simulator"
    assert ("generate_0: 6 inputs -> 6 rows; generate_1: 6 inputs -> 6 rows; generate_2: 6 inputs -> 6 rows; "
            "group: 18 inputs -> 6 rows; judge: 6 inputs -> 6 rows; pair: 6 inputs -> 6 rows") in state.message


@pytest.mark.usefixtures("prefect_api", "no_provider")
def test_deita_flow_evolves_scores_and_keeps_the_budget_of_the_whole_dataset(tmp_path):
    params = DeitaParams(
        output=str(tmp_path / "deita.jsonl"), limit=4, instruction_evolutions=2, response_evolutions=2, data_budget=5,
        run={"batch_size": 2, "result_storage": str(tmp_path / "results")},
    )
    state = deita(params, return_state=True)
    assert state.name == "Completed", state.message
    # 4 instructions -> 3 versions each (the original first), each answered -> 3 responses each (the answer first);
    # the input comes in 2 batches, and the global filter keeps data_budget rows of all 36 (per batch: up to 10)
    assert ("evol_instruction_complexity: 4 inputs -> 4 rows; instruction_complexity_scorer: 4 inputs -> 4 rows; "
            "expand_evolved_instructions: 4 inputs -> 12 rows; evol_response_quality: 12 inputs -> 12 rows; "
            "response_quality_scorer: 12 inputs -> 12 rows; expand_evolved_responses: 12 inputs -> 36 rows; "
            "generate_conversation: 36 inputs -> 36 rows; deita_filtering: 36 inputs -> 5 rows") in state.message
    kept = read(tmp_path / "deita.jsonl")
    assert len(kept) == 5
    for row in kept:
        assert set(row) == {
            "instruction", "evolved_instruction", "answer", "evol_instruction_score", "evolved_response",
            "evol_response_score", "conversation", "model_name", "distilabel_metadata", "deita_score",
            "deita_score_computed_with", "nearest_neighbor_distance",
        }
        assert set(row["distilabel_metadata"]) == {
            "statistics_answer_evol_instruction_complexity", "raw_input_instruction_complexity_scorer",
            "raw_output_instruction_complexity_scorer", "statistics_instruction_complexity_scorer",
            "statistics_evol_response_quality", "raw_input_response_quality_scorer",
            "raw_output_response_quality_scorer", "statistics_response_quality_scorer",
        }
        assert row["conversation"] == [{"role": "user", "content": row["evolved_instruction"]},
                                       {"role": "assistant", "content": row["evolved_response"]}]
        assert row["evol_instruction_score"] in (1, 2, 3, 4) and row["evol_response_score"] in (1, 2, 3, 4)
        assert row["deita_score"] == row["evol_instruction_score"] * row["evol_response_score"]
        assert row["deita_score_computed_with"] == ["evol_instruction_score", "evol_response_score"]
        assert row["nearest_neighbor_distance"] >= params.diversity_threshold
        assert row["model_name"] == "distilflow-simulator"

    # every row (same answers, from the cache), best first: the kept rows are the best 5 far enough from the rest
    everything = params.model_copy(update={"output": str(tmp_path / "all.jsonl"), "data_budget": 1000,
                                           "diversity_threshold": 0.0})
    assert deita(everything, return_state=True).name == "Completed"
    rows = read(tmp_path / "all.jsonl")
    assert len(rows) == 36 and [r["deita_score"] for r in rows] == sorted((r["deita_score"] for r in rows), reverse=True)
    assert kept == [r for r in rows if r["nearest_neighbor_distance"] >= params.diversity_threshold][:5]
    first_batch = {json.loads(line)["instruction"] for line in (ROOT / "flows/data/instructions.jsonl").read_text().splitlines()[:2]}
    for batch in (True, False):  # each input batch alone has 5 rows to keep: a filter per batch would keep 10
        alone = [r for r in rows if (r["instruction"] in first_batch) == batch]
        assert sum(r["nearest_neighbor_distance"] >= params.diversity_threshold for r in alone) >= 5
    for instruction in {r["instruction"] for r in rows}:
        versions = {r["evolved_instruction"] for r in rows if r["instruction"] == instruction}
        assert len(versions) == 3 and instruction in versions
        for version in versions:
            pairs = [r for r in rows if r["evolved_instruction"] == version]
            assert len(pairs) == 3 and pairs[0]["answer"] in {r["evolved_response"] for r in pairs}


@pytest.mark.usefixtures("prefect_api", "no_provider")
def test_image_flow_saves_files_and_rows_hold_their_paths(tmp_path):
    images = tmp_path / "images"
    params = ImageGenerationParams(
        output=str(tmp_path / "images.jsonl"), images_dir=str(images), size="64x64",
        run={"result_storage": str(tmp_path / "results")},
    )
    state = image_generation(params, return_state=True)
    assert state.name == "Completed", state.message
    rows = read(tmp_path / "images.jsonl")
    assert len(rows) == 6
    for row in rows:
        path = Path(row["image"])
        assert path.parent == images and path.exists()
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        import hashlib

        assert path.stem == hashlib.sha256(data).hexdigest()
        assert "image_base64" not in row
        assert "raw_output_image_generation_0" not in row["distilabel_metadata"]
    assert len({r["image"] for r in rows}) == 6


@pytest.mark.usefixtures("prefect_api", "no_provider")
def test_dry_run_prints_rows_and_writes_nothing(tmp_path, capsys):
    params = TextGenerationParams(output=str(tmp_path / "out.jsonl"), dry_run=True, run={"result_storage": str(tmp_path / "r")})
    state = text_generation(params, return_state=True)
    assert state.is_completed() and state.message.startswith("dry run: text_generation_0: 3 inputs -> 3 rows")
    out = capsys.readouterr().out
    assert out.count('"generation":') == 3
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "r").exists()


@pytest.mark.usefixtures("prefect_api", "no_provider")
def test_bad_input_fails_before_any_request(tmp_path, simulator):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "no instruction column"}\n')
    params = TextGenerationParams(input=str(bad), output=str(tmp_path / "out.jsonl"), model={"provider": "openai", "base_url": simulator.base_url})
    before = simulator.stats()["requests"]
    state = text_generation(params, return_state=True)
    assert state.is_failed()
    assert "row 0 has no column(s) ['instruction'], only ['prompt']" in state.message
    assert simulator.stats()["requests"] == before
    assert not (tmp_path / "out.jsonl").exists()


def test_python_flows_text_generation_runs_as_a_user_would(tmp_path):
    """The README's main command: a fresh directory, no key, no Prefect server, CLI flags."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PREFECT_API", "DISTILFLOW_"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    env["DISTILFLOW_HOME"] = str(tmp_path / "distilflow-home")  # where the kept server lives (~/.distilflow for a user)
    command = [sys.executable, str(ROOT / "flows" / "text_generation.py"), "--limit", "5", "--run.batch-size", "2"]
    status = [sys.executable, "-m", "distilflow.flows.local_server", "status"]
    try:
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
        # the kept server is up
        after_first = subprocess.run(status, env=env, capture_output=True, text=True, timeout=60).stdout
        again = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        again.stdout, again.stderr = again.communicate(timeout=240)
    finally:
        stopped = subprocess.run([sys.executable, "-m", "distilflow.flows.local_server", "stop"], env=env,
                                 capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    # the first run starts a Prefect server, says so, and keeps it; the second reuses it quietly
    assert "distilflow started a local Prefect server at http://127.0.0.1:" in done.stderr
    assert again.returncode == 0 and "started a local Prefect server" not in again.stderr
    assert "(3/3 batches from cache)" in again.stdout
    assert after_first.startswith("http://127.0.0.1:")
    assert stopped.stdout.strip() == "stopped"
    output = tmp_path / "output" / "text_generation.jsonl"
    assert f"Wrote 5 rows to {output}" in done.stdout
    assert "distilflow simulator" in done.stderr
    rows = read(output)
    assert [r["instruction"] for r in rows][:2] == ["What's the capital of Spain?", "Explain photosynthesis to a ten-year-old."]
    assert all(r["generation"] for r in rows)
    from distilflow.storage import answer_store

    assert len(answer_store(str(tmp_path / "distilflow-home" / "results"))) == 5  # the default answer cache


@pytest.mark.usefixtures("prefect_api", "no_provider")
def test_a_refused_row_is_written_as_failed_and_a_rerun_asks_only_for_it(tmp_path, sim):
    sim.configure(refuse_containing=["photosynthesis"])
    params = TextGenerationParams(
        output=str(tmp_path / "out.jsonl"), limit=6,
        model={"provider": "openai", "base_url": sim.base_url},
        run={"batch_size": 2, "max_concurrent_batches": 1, "result_storage": str(tmp_path / "results")},
    )
    state = text_generation(params, return_state=True)
    assert state.name == "CompletedWithFailedRows"
    assert "1 of 6 rows failed: HTTP 400 context_length_exceeded" in state.message
    rows = read(tmp_path / "out.jsonl")
    assert len(rows) == 6
    failed = [r for r in rows if r["generation"] is None]
    assert [r["instruction"] for r in failed] == ["Explain photosynthesis to a ten-year-old."]
    assert failed[0]["distilabel_metadata"]["error_text_generation_0"]["code"] == "context_length_exceeded"
    assert sim.stats()["requests"] == 6

    sim.configure(refuse_containing=[])
    state = text_generation(params, return_state=True)
    assert state.name == "Completed" and "(2/3 batches from cache, 5 of 6 answers from cache)" in state.message
    assert all(r["generation"] for r in read(tmp_path / "out.jsonl"))
    assert sim.stats()["requests"] == 7  # only the refused row was asked again


# A function library that records every call it gets (the flow must really run the functions).
APIGEN_LIBRARY = """
import json
from pathlib import Path

CALLS = Path(__file__).with_name("calls.jsonl")


def _record(name, **arguments):
    with CALLS.open("a") as f:
        f.write(json.dumps({"name": name, "arguments": arguments}) + "\\n")


def add(a: int, b: int) -> int:
    _record("add", a=a, b=b)
    return a + b


def shout(text: str) -> str:
    _record("shout", text=text)
    return text.upper()


def fail(n: int) -> int:
    _record("fail", n=n)
    raise ValueError(f"no luck with {n}")
"""
APIGEN_FUNCTIONS = {
    "add": ("Adds two integers.", {"a": {"type": "integer"}, "b": {"type": "integer"}}),
    "shout": ("Writes a text in capitals.", {"text": {"type": "string"}}),
    "fail": ("Always fails.", {"n": {"type": "integer"}}),
}
APIGEN_COLUMNS = [
    "func_name", "func_desc", "tools", "examples", "query", "answers", "distilabel_metadata", "generator_model",
    "keep_row_after_execution_check", "execution_result", "thought", "keep_row_after_semantic_check", "judge_model",
]


@pytest.mark.usefixtures("prefect_api", "no_provider")
def test_apigen_flow_generates_executes_judges_and_keeps_rows_that_passed_both(tmp_path):
    import re

    (tmp_path / "lib.py").write_text(APIGEN_LIBRARY)
    with (tmp_path / "functions.jsonl").open("w") as f:
        for name, (description, properties) in APIGEN_FUNCTIONS.items():
            tool = {"type": "function", "function": {"name": name, "description": description, "parameters": {
                "type": "object", "properties": properties, "required": list(properties)}}}
            f.write(json.dumps({"func_name": name, "func_desc": description, "tools": json.dumps([tool]),
                                "examples": '## Query:\nDouble 4.\n## Answers:\n[{"name": "double", "arguments": {"x": 4}}]'}) + "\n")
    params = APIGenParams(
        input=str(tmp_path / "functions.jsonl"), functions=str(tmp_path / "lib.py"), output=str(tmp_path / "out.jsonl"),
        number=[2], run={"batch_size": 2, "result_storage": str(tmp_path / "results")},
    )
    state = apigen(params, return_state=True)
    assert state.name == "Completed", state.message
    # the execution checker ran every generated call (two a row, as number=[2] asks) against the library
    calls = read(tmp_path / "calls.jsonl")
    assert sorted(c["name"] for c in calls) == ["add", "add", "fail", "fail", "shout", "shout"]
    assert all(type(v) is int for c in calls if c["name"] in ("add", "fail") for v in c["arguments"].values())
    rows = read(tmp_path / "out.jsonl")
    kept = re.search(r"keep: 3 inputs -> (\d+) rows", state.message)
    assert ("load_functions: 3 inputs -> 3 rows; generate: 3 inputs -> 3 rows; execute: 3 inputs -> 3 rows; "
            "judge: 3 inputs -> 3 rows; keep: 3 inputs -> ") in state.message
    assert kept and int(kept.group(1)) == len(rows) >= 1
    for row in rows:
        assert list(row) == APIGEN_COLUMNS
        assert row["func_name"] in ("add", "shout")  # `fail` never passes the execution check
        assert row["keep_row_after_execution_check"] is True and row["keep_row_after_semantic_check"] is True
        answers = json.loads(row["answers"])
        assert [a["name"] for a in answers] == [row["func_name"]] * 2
        expected = [str(a["arguments"]["a"] + a["arguments"]["b"]) if a["name"] == "add" else a["arguments"]["text"].upper()
                    for a in answers]
        assert row["execution_result"] == expected
        assert all({"name": a["name"], "arguments": a["arguments"]} in calls for a in answers)
        assert row["generator_model"] == row["judge_model"] == "distilflow-simulator"
        assert set(row["distilabel_metadata"]) == {
            "raw_input_generate", "raw_output_generate", "statistics_generate",
            "raw_input_judge", "raw_output_judge", "statistics_judge",
        }


@pytest.mark.usefixtures("prefect_api", "no_provider")
def test_apigen_flow_refuses_a_missing_function_library_before_any_request(tmp_path, simulator):
    endpoint = {"provider": "openai", "base_url": simulator.base_url}
    params = APIGenParams(functions=str(tmp_path / "missing.py"), output=str(tmp_path / "out.jsonl"),
                          generator=endpoint, judge=endpoint)
    before = simulator.stats()["requests"]
    state = apigen(params, return_state=True)
    assert state.is_failed() and "is neither a .py file nor a folder" in state.message
    assert simulator.stats()["requests"] == before and not (tmp_path / "out.jsonl").exists()


def test_a_flow_with_two_models_and_no_key_gets_one_simulator_and_one_warning(monkeypatch):
    from distilflow.flows._common import ModelSettings, model_endpoint

    class Logger:
        def __init__(self):
            self.warnings = []

        def warning(self, message, *args):
            self.warnings.append(message % args)

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    logger = Logger()
    settings = ModelSettings(provider="simulator")
    with model_endpoint(settings, logger) as generator, model_endpoint(settings, logger) as judge:
        assert generator["base_url"] == judge["base_url"]
        assert httpx.get(f"{judge['base_url']}/models").status_code == 200
    assert len(logger.warnings) == 1 and generator["base_url"] in logger.warnings[0]
    with model_endpoint(settings, logger):  # the next run starts a simulator of its own, and says so
        pass
    assert len(logger.warnings) == 2


def test_server_status_imports_no_prefect(tmp_path):
    """`distilflow-server status` answers at once: it reads a record and asks /health, nothing more."""
    env = {**os.environ, "DISTILFLOW_HOME": str(tmp_path / "home")}
    probe = ("import sys; from distilflow.local_server import main; main(['status']); "
             "print(sorted(m for m in ('prefect', 'httpx', 'openai', 'pydantic') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines() == ["local Prefect server: not running", "[]"], done.stderr
    script = subprocess.run([Path(sys.executable).parent / "distilflow-server", "status"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert script.returncode == 0 and script.stdout == "local Prefect server: not running\n"
