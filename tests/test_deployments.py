"""prefect.yaml end to end: a real server, `prefect deploy --all`, a process worker, runs through the API."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from deployment_env import ROOT

from distilflow.storage import read_rows


def test_every_flow_is_deployed_with_its_schedule_and_form(deployed):
    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    assert {d["name"] for d in declared} == {"text-generation", "preference-dataset", "image-generation", "apigen", "deita"}
    for entry in declared:
        deployment = deployed.deployment(entry["name"])
        assert deployment["entrypoint"] == entry["entrypoint"]
        assert deployment["work_pool_name"] == "distilflow"
        assert set(entry["tags"]) <= set(deployment["tags"])
        assert deployment["enforce_parameter_schema"] is True
        properties = deployment["parameter_openapi_schema"]["properties"]["params"]
        assert properties  # a pydantic model: the UI renders a form from it
    main = deployed.deployment("text-generation")
    (schedule,) = main["schedules"]
    assert schedule["schedule"]["cron"] == "0 3 * * *" and schedule["schedule"]["timezone"] == "UTC"
    assert schedule["active"] is False


@pytest.mark.parametrize(
    "name, parameters, check",
    [
        ("text-generation", {"limit": 5, "num_generations": 2}, lambda rows: len(rows) == 10),
        ("preference-dataset", {"limit": 3}, lambda rows: len(rows) == 3 and all(len(r["ratings"]) == 2 for r in rows)),
        ("image-generation", {"limit": 2, "size": "64x64"}, lambda rows: len(rows) == 2 and all(r["image"].endswith(".png") for r in rows)),
        # the rows that passed both checks: the simulator's yes/no verdicts decide how many of the 4
        ("apigen", {"limit": 4}, lambda rows: 1 <= len(rows) <= 4 and all(
            r["keep_row_after_execution_check"] is True and r["keep_row_after_semantic_check"] is True for r in rows)),
        # 2 instructions -> 6 versions -> 18 pairs, of which the global filter keeps data_budget, best first
        ("deita", {"limit": 2, "data_budget": 3}, lambda rows: len(rows) == 3 and all(
            r["deita_score"] == r["evol_instruction_score"] * r["evol_response_score"] for r in rows)),
    ],
)
def test_each_deployment_runs_on_the_worker(deployed, tmp_path, name, parameters, check):
    output = tmp_path / f"{name}.jsonl"
    params = {"params": {**parameters, "output": str(output)}}
    if name == "image-generation":
        params["params"]["images_dir"] = str(tmp_path / "images")
    response = deployed.create_run(name, params)
    assert response.status_code == 201, response.text
    run = deployed.wait_for_run(response.json()["id"])
    assert run["state"]["type"] == "COMPLETED", (run["state"], deployed.log("worker")[-3000:])
    rows = list(read_rows(str(output)))
    assert check(rows), rows[:1]
    summary = deployed.latest_artifact(f"{name}-summary")
    assert summary is not None and summary["flow_run_id"] == run["id"]
    table = json.loads(summary["data"])
    assert sum(step["rows out"] for step in table[-1:]) == len(rows)
    assert deployed.latest_artifact(f"{name}-output")["flow_run_id"] == run["id"]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"num_generations": 0}, "num_generations"),
        ({"model": {"temperature": 7}}, "temperature"),
        ({"model": {"provider": "acme"}}, "provider"),
        ({"run": {"batch_size": 0}}, "batch_size"),
    ],
)
def test_bad_parameters_are_rejected_at_run_creation(deployed, params, field):
    response = deployed.create_run("text-generation", {"params": params})
    assert response.status_code == 409, response.text
    assert field in response.text and "Validation failed" in response.text


def test_model_settings_come_from_prefect_variable_and_secret_block(deployed, sim, tmp_path):
    """No key or URL in prefect.yaml or the worker's environment: the operator set them in Prefect."""
    secret = "sk-deployed-SECRET-9876"
    code = (
        "from prefect.blocks.system import Secret; from prefect.variables import Variable; "
        f"Secret(value={secret!r}).save('distilflow-openai-api-key', overwrite=True); "
        f"Variable.set('distilflow_openai_base_url', {sim.base_url!r}, overwrite=True)"
    )
    subprocess.run([sys.executable, "-c", code], env=deployed.env, check=True, timeout=60)
    try:
        response = deployed.create_run("text-generation", {"params": {"limit": 3, "output": str(tmp_path / "o.jsonl"), "model": {"model": "deployed-model"}}})
        run = deployed.wait_for_run(response.json()["id"])
        assert run["state"]["type"] == "COMPLETED", run["state"]
        assert sim.stats()["requests"] == 3  # the run talked to the server named by the Variable
        assert {r["model_name"] for r in read_rows(str(tmp_path / "o.jsonl"))} == {"deployed-model"}
        # the key is nowhere in the deployment, the run's parameters, its logs or the worker's log
        logs = deployed.request("POST", "/logs/filter", json={"logs": {"flow_run_id": {"any_": [run["id"]]}}, "limit": 200, "offset": 0, "sort": "TIMESTAMP_ASC"}).text
        for text in (json.dumps(deployed.deployment("text-generation")), json.dumps(run), logs, deployed.log("worker")):
            assert secret not in text
        assert secret not in (ROOT / "prefect.yaml").read_text()
    finally:
        cleanup = (
            "from prefect.variables import Variable; from prefect.blocks.core import Block; "
            "Variable.unset('distilflow_openai_base_url'); "
            "import httpx, os; api = os.environ['PREFECT_API_URL']; "
            "httpx.delete(api + '/block_documents/' + httpx.get(api + '/block_types/slug/secret/block_documents/name/distilflow-openai-api-key').json()['id'])"
        )
        subprocess.run([sys.executable, "-c", code.split(";")[0] + ";" + cleanup], env=deployed.env, check=False, timeout=60)
