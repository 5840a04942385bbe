"""Flows with inputs, outputs, images and the result cache on S3 (a real S3 API server on loopback)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from deployment_env import call_api
from prefect.settings import PREFECT_API_URL

from distilflow.flows.image_generation import ImageGenerationParams, image_generation
from distilflow.flows.text_generation import TextGenerationParams, text_generation
from distilflow.storage import answer_store, filesystem, read_rows, write_rows

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_provider(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("prefect_api", "no_provider")
def test_text_generation_reads_and_writes_s3(s3, sim, tmp_path):
    write_rows(s3.uri("in/instructions.parquet"), [{"instruction": f"question {i}"} for i in range(7)])
    params = TextGenerationParams(
        input=s3.uri("in/instructions.parquet"), output=s3.uri("out/rows.jsonl"),
        model={"provider": "openai", "base_url": sim.base_url},
        run={"batch_size": 3, "result_storage": s3.uri("results")},
    )
    state = text_generation(params, return_state=True)
    assert state.name == "Completed", state.message
    rows = list(read_rows(s3.uri("out/rows.jsonl")))
    assert [r["instruction"] for r in rows] == [f"question {i}" for i in range(7)]
    assert sim.stats()["requests"] == 7
    assert len(answer_store(s3.uri("results"))) == 7  # one cached answer per request, in the bucket
    fs, out_dir = filesystem(s3.uri("out"))
    assert [p.rsplit("/", 1)[-1] for p in fs.ls(out_dir)] == ["rows.jsonl"]  # no staging left behind


@pytest.mark.usefixtures("prefect_api", "no_provider")
def test_image_flow_stores_images_on_s3_under_content_hashes(s3, sim):
    params = ImageGenerationParams(
        output=s3.uri("images.jsonl"), images_dir=s3.uri("images"), size="64x64", limit=4,
        model={"provider": "openai", "base_url": sim.base_url}, run={"result_storage": s3.uri("results")},
    )
    state = image_generation(params, return_state=True)
    assert state.name == "Completed", state.message
    rows = list(read_rows(s3.uri("images.jsonl")))
    assert len(rows) == 4
    fs, _ = filesystem(s3.uri("images"))
    for row in rows:
        assert row["image"].startswith(f"s3://{s3.bucket}/images/") and row["image"].endswith(".png")
        data = fs.cat(row["image"])
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert row["image"].rsplit("/", 1)[-1] == hashlib.sha256(data).hexdigest() + ".png"
    flow_run_id = str(state.state_details.flow_run_id)
    gallery = call_api("GET", f"{PREFECT_API_URL.value()}/artifacts/image-generation-gallery/latest").json()
    assert gallery["flow_run_id"] == flow_run_id
    assert gallery["data"].count("data:image/png;base64,") == 4
    assert all(row["image"] in gallery["data"] for row in rows)


def _run_flow_process(tmp_path: Path, name: str, sim_url: str, s3) -> subprocess.CompletedProcess:
    """`python flows/text_generation.py` in its own process with its own, fresh Prefect database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "OPENAI_"))}
    # its own temporary Prefect server, as a worker with its own database (not distilflow's kept one)
    env.update(PREFECT_HOME=str(tmp_path / f"prefect-{name}"), OPENAI_BASE_URL=sim_url, OPENAI_API_KEY="sk-local-test",
               DISTILFLOW_LOCAL_SERVER="0")
    command = [
        sys.executable, str(ROOT / "flows" / "text_generation.py"), "--limit", "6", "--run.batch-size", "2",
        "--model.model", "sim-model", "--output", s3.uri(f"out-{name}.jsonl"), "--run.result-storage", s3.uri("shared-results"),
    ]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_two_workers_with_separate_prefect_databases_share_the_s3_cache(s3, sim, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "distinct-S3-SECRET-4711")  # the server accepts any key
    first = _run_flow_process(tmp_path, "a", sim.base_url, s3)
    assert first.returncode == 0, first.stderr[-3000:]
    assert sim.stats()["requests"] == 6
    second = _run_flow_process(tmp_path, "b", sim.base_url, s3)
    assert second.returncode == 0, second.stderr[-3000:]
    assert sim.stats()["requests"] == 6  # the second worker sent nothing
    assert "(3/3 batches from cache)" in second.stdout
    assert (tmp_path / "prefect-a").is_dir() and (tmp_path / "prefect-b").is_dir()
    rows_a = list(read_rows(s3.uri("out-a.jsonl")))
    rows_b = list(read_rows(s3.uri("out-b.jsonl")))
    assert rows_a == rows_b and len(rows_a) == 6
    # the key and the S3 secret are nowhere in the cached results
    fs, path = filesystem(s3.uri("shared-results"))
    blobs = b"".join(fs.cat(p) for p in fs.find(path))
    assert b"sk-local-test" not in blobs and os.environ["AWS_SECRET_ACCESS_KEY"].encode() not in blobs
    assert json.loads(json.dumps(rows_a[0]))["model_name"] == "sim-model"
