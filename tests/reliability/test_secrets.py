"""With an API key and S3 credentials set, no trace of either anywhere a run leaves things.

Every flow runs through its deployment (a real server, process pool and worker whose environment
holds the secrets), and the main flow also as `python flows/text_generation.py`. Then every file
under the test's directory (the Prefect database and home, the server and worker logs, local
outputs and results), every object in the S3 bucket (outputs, images, cached results), what the
API serves (flow runs, deployments, logs, artifacts, blocks) and the serialized task are searched
for the key and the secret, as written and base64-encoded.
"""

from __future__ import annotations

import base64
import json
import pickle
import subprocess
import sys
from pathlib import Path

import cloudpickle
import pytest
from deployment_env import DeploymentEnvironment
from pydantic import SecretStr

from distilflow.storage import filesystem, read_rows
from distilflow.steps.tasks import TextGeneration
from distilflow.models import OpenAILLM
from distilflow.simulator import Simulator

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-reliability-KEY-3141592653"
S3_SECRET = "s3-reliability-SECRET-2718281828"
SECRETS = [KEY, S3_SECRET]


def forms(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [raw, base64.b64encode(raw), base64.b64encode(raw)[:-4], json.dumps(secret).encode()]


def hits(blob: bytes, where: str) -> list[str]:
    return [f"{secret[:8]}… in {where}" for secret in SECRETS for form in forms(secret) if form in blob]


@pytest.fixture
def environment(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)  # the moto server accepts any secret
    with Simulator(api_key=KEY) as sim:  # answers 401 unless the run really sends the key
        environment = DeploymentEnvironment(tmp_path / "deployments")
        environment.workdir.mkdir()
        secrets_env = {
            "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": sim.base_url, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3.endpoint_url,
            "DISTILFLOW_RESULTS": s3.uri("results"),
        }
        try:
            environment.start(worker_env=secrets_env)
            yield environment, sim, secrets_env
        finally:
            environment.stop()


def run_deployment(environment: DeploymentEnvironment, name: str, params: dict) -> dict:
    response = environment.create_run(name, {"params": params})
    assert response.status_code == 201, response.text
    run = environment.wait_for_run(response.json()["id"])
    assert run["state"]["type"] == "COMPLETED", (run["state"], environment.log("worker")[-3000:])
    return run


def test_no_key_or_s3_secret_anywhere_a_run_leaves_things(environment, s3, tmp_path):
    environment, sim, secrets_env = environment
    runs = [
        run_deployment(environment, "text-generation", {"limit": 6, "output": s3.uri("out/text.jsonl"), "run": {"batch_size": 2}}),
        run_deployment(environment, "preference-dataset", {"limit": 3, "output": str(tmp_path / "prefs.jsonl")}),
        run_deployment(environment, "image-generation", {"limit": 2, "size": "64x64", "output": s3.uri("out/images.jsonl"),
                                                          "images_dir": s3.uri("images")}),
    ]
    cli = subprocess.run(
        [sys.executable, str(ROOT / "flows" / "text_generation.py"), "--limit", "4", "--output", str(tmp_path / "cli.jsonl"),
         "--run.result-storage", str(tmp_path / "cli-results")],
        cwd=tmp_path, env={**environment.env, **secrets_env}, capture_output=True, text=True, timeout=240,
    )
    assert cli.returncode == 0, cli.stderr[-3000:]
    stats = sim.stats()
    assert stats["requests"] > 0 and set(stats["by_status"]) == {"200"}  # every request carried the key
    assert len(list(read_rows(s3.uri("out/text.jsonl")))) == 6 and len(list(read_rows(str(tmp_path / "cli.jsonl")))) == 4

    found: list[str] = []
    # Files: the Prefect database and home, server and worker logs, local outputs and results.
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "prefect.db" for p in files) and any(p.name == "worker.log" for p in files)
    for path in files:
        found += hits(path.read_bytes(), str(path.relative_to(tmp_path)))
    # S3: outputs, images and cached results.
    fs, bucket = filesystem(s3.uri(""))
    objects = fs.find(bucket)
    assert any("/results/answers/" in o for o in objects) and any("/images/" in o for o in objects)
    for key in objects:
        found += hits(fs.cat_file(key), f"s3://{key}")
    # What the API serves: runs (parameters, states), deployments, logs, artifacts, blocks.
    api = {
        "flow runs": environment.request("POST", "/flow_runs/filter", json={"limit": 200}),
        "task runs": environment.request("POST", "/task_runs/filter", json={"limit": 200}),
        "deployments": environment.request("POST", "/deployments/filter", json={"limit": 200}),
        "logs": environment.request("POST", "/logs/filter", json={"limit": 200}),
        "artifacts": environment.request("POST", "/artifacts/filter", json={"limit": 200}),
        "blocks": environment.request("POST", "/block_documents/filter", json={"limit": 200}),
    }
    for where, response in api.items():
        assert response.status_code == 200 and (response.json() or where == "blocks"), where
        found += hits(response.content, f"API {where}")
    assert len(api["flow runs"].json()) == 4 and len(api["logs"].json()) > 10
    for run in runs:
        summary = environment.latest_artifact(f"{_flow_name(environment, run)}-summary")
        assert summary is not None
        found += hits(json.dumps(summary).encode(), f"artifact of {run['name']}")
    # A task with a key, serialized the ways Prefect and Dask serialize it.
    task = TextGeneration(llm=OpenAILLM(model="m", base_url=sim.base_url, api_key=SecretStr(KEY)))
    for name, blob in [("pickle", pickle.dumps(task)), ("cloudpickle", cloudpickle.dumps(task)),
                       ("repr", repr(task).encode()), ("model_dump_json", task.model_dump_json().encode())]:
        found += hits(blob, f"serialized task ({name})")

    assert found == []


def _flow_name(environment: DeploymentEnvironment, run: dict) -> str:
    flow = environment.request("GET", f"/flows/{run['flow_id']}").json()
    return flow["name"]
