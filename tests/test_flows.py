"""The runnable flows: in-process under a real Prefect API, and `python flows/<name>.py` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert "needs column(s) ['instruction'] but row 0 has only ['prompt']" in state.message
    assert simulator.stats()["requests"] == before
    assert not (tmp_path / "out.jsonl").exists()


def test_python_flows_text_generation_runs_as_a_user_would(tmp_path):
    """The README's main command: a fresh directory, no key, no Prefect server, CLI flags."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PREFECT_API", "DISTILFLOW_"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    env["DISTILFLOW_HOME"] = str(tmp_path / "distilflow-home")  # where the kept server lives (~/.distilflow for a user)
    command = [sys.executable, str(ROOT / "flows" / "text_generation.py"), "--limit", "5", "--run.batch-size", "2"]
    try:
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
        again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    finally:
        stopped = subprocess.run([sys.executable, "-m", "distilflow.flows.local_server", "stop"], env=env,
                                 capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    # the first run starts a Prefect server, says so, and keeps it; the second reuses it quietly
    assert "distilflow started a local Prefect server at http://127.0.0.1:" in done.stderr
    assert again.returncode == 0 and "started a local Prefect server" not in again.stderr
    assert "(3/3 batches from cache)" in again.stdout
    assert stopped.stdout.strip() == "stopped"
    output = tmp_path / "output" / "text_generation.jsonl"
    assert f"Wrote 5 rows to {output}" in done.stdout
    assert "distilflow simulator" in done.stderr
    rows = read(output)
    assert [r["instruction"] for r in rows][:2] == ["What's the capital of Spain?", "Explain photosynthesis to a ten-year-old."]
    assert all(r["generation"] for r in rows)
    from distilflow.storage import answer_store

    assert len(answer_store(str(tmp_path / ".distilflow" / "results"))) == 5  # the default answer cache


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