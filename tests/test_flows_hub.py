"""`python flows/<name>.py --push-to-hub org/name`: the dataset is written, then pushed with its card (Hub double)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import datasets
import pytest

from reliability.flow_process import ROOT, flow_env

pytestmark = pytest.mark.usefixtures("prefect_api")


def push_command(tmp_path, repo: str, *more: str) -> list[str]:
    instructions = tmp_path / "in.jsonl"
    instructions.write_text("".join(json.dumps({"instruction": f"q{i}"}) + "\n" for i in range(4)))
    return [sys.executable, str(ROOT / "flows" / "text_generation.py"), "--input", str(instructions),
            "--output", str(tmp_path / "out.jsonl"), "--model.provider", "openai", "--model.model", "sim-model",
            "--run.result-storage", str(tmp_path / "answers"), "--push-to-hub", repo, *more]


def run(command: list[str], env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=240)


def test_a_flow_pushes_its_dataset_and_a_failed_push_keeps_the_rows_for_the_next_run(hub, sim, tmp_path):
    env = {**flow_env(sim), "HF_TOKEN": "hf_test", "HF_ENDPOINT": hub.endpoint}
    hub.refuse_commits(10)  # the Hub is down: the rows are written, the push fails, nothing is lost
    failed = run(push_command(tmp_path, "me/flowed", "--private"), env, tmp_path)
    assert failed.returncode == 1, failed.stdout[-2000:] + failed.stderr[-3000:]
    assert "The rows are written" in failed.stderr and "Run the same command again to push them" in failed.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 4 and sim.stats()["requests"] == 4
    hub.refuse_commits(0)
    done = run(push_command(tmp_path, "me/flowed", "--private"), env, tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Pushed the dataset to" in done.stdout and sim.stats()["requests"] == 4  # every answer from the cache
    assert hub.repo("me/flowed").private
    rows = datasets.load_dataset("me/flowed", "default", split="train", token="hf_test").to_list()
    assert [row["instruction"] for row in rows] == [f"q{i}" for i in range(4)] and all(r["generation"] for r in rows)


def test_a_push_without_a_token_is_refused_before_any_request(hub, sim, tmp_path):
    env = {k: v for k, v in flow_env(sim).items() if k != "HF_TOKEN"}
    env.update(HF_ENDPOINT=hub.endpoint, HF_HOME=str(tmp_path / "no-login"))
    done = run(push_command(tmp_path, "me/never"), env, tmp_path)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-3000:]
    assert "No Hugging Face token to push with: pass token=..., set HF_TOKEN" in done.stderr
    assert sim.stats()["requests"] == 0 and hub.repo("me/never") is None and not os.path.exists(tmp_path / "out.jsonl")


def test_a_pipeline_flows_card_on_the_hub_says_how_the_data_was_made(hub, monkeypatch, tmp_path):
    from distilflow.flows.preference_dataset import PreferenceDatasetParams, preference_dataset

    monkeypatch.setenv("HF_TOKEN", "hf_test")
    params = PreferenceDatasetParams(
        output=str(tmp_path / "prefs.jsonl"), limit=3, push_to_hub="me/prefs",
        generators=[{"model": "gen-a"}, {"model": "gen-b", "temperature": 0.9}],
        run={"batch_size": 4, "result_storage": str(tmp_path / "results")},
    )
    state = preference_dataset(params, return_state=True)
    assert state.is_completed(), state.message
    repo = hub.repo("me/prefs")
    card = repo.files["README.md"].decode()
    assert "## How it was made" in card and "`generate_0` >> `group`" in card and "temperature=0.9" in card
    assert "pipeline.yaml" in repo.files
    assert len(datasets.load_dataset("me/prefs", "default", split="train")) == 3
