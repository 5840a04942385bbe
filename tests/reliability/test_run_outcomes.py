"""What a run's end says and leaves, as a user's `python flows/x.py` meets it: a judge that never
answers in format is a run with failed rows, not a success; the answer cache is the user's (the
same command from another directory buys nothing again); what distilflow keeps in the user's home
is the user's alone."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from distilflow.simulator import Simulator
from flow_process import ROOT, flow_env, stored_answers, write_instructions

pytestmark = pytest.mark.reliability


@pytest.mark.usefixtures("prefect_api")
def test_a_judge_that_never_answers_in_format_ends_the_run_with_failed_rows(tmp_path):
    instructions = write_instructions(tmp_path / "in.jsonl", 24)
    output = tmp_path / "pairs.jsonl"
    with Simulator(latency=0.0) as generators, Simulator(latency=0.0, malformed_fraction=1.0) as judge:
        command = [
            sys.executable, str(ROOT / "flows" / "preference_dataset.py"), "--input", str(instructions),
            "--output", str(output), "--judge.base-url", judge.base_url, "--run.batch-size", "8",
            "--run.result-storage", str(tmp_path / "answers"),
        ]
        env = flow_env(generators)
        done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)

        assert done.returncode == 3, done.stderr[-3000:]  # failed rows, dataset written
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("warning: step 'judge': 24/24 generations kept raw output; most common reason (24x): ")
        assert "(100%), more than max_fallback_share=0.5 allows" in last
        assert "--run.max-fallback-share" in last
        rows = [json.loads(line) for line in output.read_text().splitlines()]
        assert len(rows) == 24 and all(r["chosen"] is None and r["rejected"] is None for r in rows)
        assert judge.stats()["requests"] == 24

        # allowed: the same run, every answer from the cache, ends as a run with fallbacks (exit 0)
        again = subprocess.run([*command, "--run.max-fallback-share", "1"], env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=240)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "24 generations kept raw output (judge: 24)" in again.stdout + again.stderr
        assert judge.stats()["requests"] == 24 and generators.stats()["requests"] == 48


def test_the_answer_cache_is_the_users_from_any_directory_and_home_is_private(tmp_path):
    """No --run.result-storage, no DISTILFLOW_RESULTS, no Prefect API: as a new user's first commands."""
    home = tmp_path / "home"
    instructions = write_instructions(tmp_path / "in.jsonl", 6)
    with Simulator(latency=0.0) as sim:
        env = {k: v for k, v in flow_env(sim).items() if not k.startswith(("PREFECT_API", "DISTILFLOW_"))}
        env["DISTILFLOW_HOME"] = str(home)
        command = [sys.executable, str(ROOT / "flows" / "text_generation.py"), "--input", str(instructions),
                   "--output", "out.jsonl", "--model.provider", "openai", "--model.model", "sim-model"]
        runs = []
        try:
            for name in ("first", "second"):
                folder = tmp_path / name
                folder.mkdir()
                runs.append(subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True, timeout=240))
        finally:
            subprocess.run([Path(sys.executable).parent / "distilflow-server", "stop"], env=env, capture_output=True)
        for done in runs:
            assert done.returncode == 0, done.stderr[-3000:]
        assert sim.stats()["requests"] == 6  # the second directory's run bought nothing again
        assert "(1/1 batches from cache)" in runs[1].stdout
        assert stored_answers(str(home / "results")) == 6
        assert (tmp_path / "second" / "out.jsonl").read_text() == (tmp_path / "first" / "out.jsonl").read_text()
        assert not (tmp_path / "first" / ".distilflow").exists()

    # the Prefect database and log, the answers, the records: this user's alone
    found = {"db": False, "answers": False}
    for folder, dirs, files in os.walk(home):
        assert stat.S_IMODE(os.stat(folder).st_mode) & 0o077 == 0, folder
        for name in files:
            path = Path(folder, name)
            mode = stat.S_IMODE(path.lstat().st_mode)
            assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
            found["db"] |= name.endswith(".db")
            found["answers"] |= "results" in path.parts
    assert found == {"db": True, "answers": True}
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
