"""A user's pipeline script as a command (`pipeline.main()`) and as a deployable flow (`pipeline.as_flow()`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from prefect.settings import PREFECT_API_URL

pytestmark = pytest.mark.usefixtures("prefect_api")

SCRIPT = textwrap.dedent('''
    import os
    from distilflow.steps.tasks import TextGeneration
    from distilflow.models import OpenAILLM
    from distilflow.pipeline import Pipeline
    from distilflow.steps import GeneratorStep
    from distilflow.steps.columns import GroupColumns, KeepColumns

    class Questions(GeneratorStep):
        @property
        def outputs(self):
            return ["instruction"]

        def process(self, offset=0):
            rows = [{"instruction": f"question {i}"} for i in range(7)]
            for start in range(offset, 7, self.batch_size):
                yield rows[start : start + self.batch_size], start + self.batch_size >= 7

    with Pipeline(name="user-pipeline", description="Two models answer; their answers side by side.") as pipeline:
        gens = [TextGeneration(name=f"gen_{m}", llm=OpenAILLM(model=f"model-{m}", base_url=os.environ["SIM_URL"],
                                                                api_key="sk-not-a-flag"))
                for m in "ab"]
        load = Questions(batch_size=3)
        keep = KeepColumns(name="keep", columns=["instruction", "answers"])
        load >> gens >> GroupColumns(name="group", columns=["generation"], output_columns=["answers"]) >> keep
        if os.environ.get("TWO_LEAVES"):
            load >> KeepColumns(name="questions", columns=["instruction"])

    flow = pipeline.as_flow()

    if __name__ == "__main__":
        pipeline.main()
''')


@pytest.fixture
def script(tmp_path, sim):
    path = tmp_path / "user_pipeline.py"
    path.write_text(SCRIPT)

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        environ = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "SIM_URL": sim.base_url,
                   "DISTILFLOW_RESULTS": str(tmp_path / "results"), **env}
        return subprocess.run([sys.executable, str(path), *args], env=environ, cwd=tmp_path, capture_output=True,
                              text=True, timeout=180)

    return run


def test_flags_for_every_steps_run_time_parameters_and_no_key(script):
    shown = script("--help")
    assert shown.returncode == 0
    for flag in ("--output", "--dry-run", "--run.max-rows-in-flight", "--gen_a.input-batch-size",
                 "--gen_b.llm.generation-kwargs", "--questions_0.batch-size", "--keep.input-batch-size"):
        assert flag in shown.stdout
    assert "api-key" not in shown.stdout and "sk-not-a-flag" not in shown.stdout


def test_a_run_streams_the_leaf_to_output_and_a_rerun_sends_nothing(script, sim, tmp_path):
    done = script("--output", "rows.jsonl", "--gen_a.llm.generation-kwargs", '{"temperature": 0.3}')
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [row["instruction"] for row in rows] == [f"question {i}" for i in range(7)]
    assert all(set(row) == {"instruction", "answers"} and len(row["answers"]) == 2 for row in rows)
    assert sim.stats()["requests"] == 14
    assert "Wrote 7 rows to" in done.stdout

    sim.reset()
    again = script("--output", "rows.jsonl", "--gen_a.llm.generation-kwargs", '{"temperature": 0.3}')
    assert again.returncode == 0 and sim.stats()["requests"] == 0
    assert [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()] == rows


def test_several_leaves_each_get_a_file(script, tmp_path):
    done = script("--output", "out", TWO_LEAVES="1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert len((tmp_path / "out" / "keep.jsonl").read_text().splitlines()) == 7
    assert [json.loads(line) for line in (tmp_path / "out" / "questions.jsonl").read_text().splitlines()] == [
        {"instruction": f"question {i}"} for i in range(7)
    ]


def test_a_bad_flag_exits_2_before_any_request(script, sim, tmp_path):
    done = script("--gen_a.input-batch-size", "0")
    assert done.returncode == 2
    assert "--gen_a.input-batch-size 0: Input should be greater than 0" in done.stderr
    assert sim.stats()["requests"] == 0 and not (tmp_path / "output").exists()


def test_dry_run_prints_a_few_rows_and_writes_nothing(script, sim, tmp_path):
    done = script("--dry-run")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count('keep: {') == 3 and sim.stats()["requests"] == 6
    assert not (tmp_path / "output").exists()


def test_the_deployable_flow_has_a_parameter_form_of_the_steps_settings(script, tmp_path):
    probe = textwrap.dedent('''
        import json, sys
        sys.path.insert(0, ".")
        from user_pipeline import flow
        print(json.dumps(flow.parameters.model_dump()))
    ''')
    (tmp_path / "probe.py").write_text(probe)
    environ = {**os.environ, "SIM_URL": "http://127.0.0.1:9/v1"}
    shown = subprocess.run([sys.executable, "probe.py"], cwd=tmp_path, env=environ, capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0, shown.stderr[-3000:]
    schema = json.loads(shown.stdout)
    assert schema["required"] == [] and list(schema["properties"]) == ["params"]
    text = json.dumps(schema)
    for name in ("gen_a", "gen_b", "generation_kwargs", "input_batch_size", "max_rows_in_flight", "output"):
        assert name in text
    assert "api_key" not in text and "sk-not-a-flag" not in text


RUN_SCRIPT = SCRIPT.replace('''if __name__ == "__main__":
    pipeline.main()
''', '''distiset = pipeline.run()  # distilabel's own idiom
print(len(distiset["default"]["train"]), flush=True)
''')
assert RUN_SCRIPT != SCRIPT


def test_pipeline_run_in_a_plain_script_uses_the_server_distilflow_keeps(tmp_path, sim):
    """As `python flows/x.py` does: the first run starts it (and says so), later runs reuse it, and the
    runs stay in its history, not in a temporary server gone with the run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import temporary_settings

    script = tmp_path / "run_pipeline.py"
    script.write_text(RUN_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(SIM_URL=sim.base_url, DISTILFLOW_HOME=str(tmp_path / "home"), PREFECT_HOME=str(tmp_path / "prefect"),
               DISTILFLOW_RESULTS=str(tmp_path / "results"))
    server = [sys.executable, "-m", "distilflow.flows.local_server"]
    try:
        runs = [subprocess.run([sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True, text=True,
                               timeout=240) for _ in range(2)]
        for run in runs:
            assert run.returncode == 0, run.stderr[-3000:]
            assert run.stdout.strip().splitlines()[-1] == "7"
        assert "distilflow started a local Prefect server at" in runs[0].stderr
        assert "started a local Prefect server" not in runs[1].stderr
        url = subprocess.run([*server, "status"], env=env, capture_output=True, text=True, timeout=60).stdout.splitlines()[0]
        with temporary_settings(updates={PREFECT_API_URL: f"{url}/api"}), get_client(sync_client=True) as client:
            kept = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["user-pipeline"])))
        assert len(kept) == 2 and all(run.state.is_completed() for run in kept)
    finally:
        stopped = subprocess.run([*server, "stop"], env=env, capture_output=True, text=True, timeout=60)
    assert stopped.stdout.strip() == "stopped"
