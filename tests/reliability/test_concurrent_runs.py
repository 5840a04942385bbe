"""Two runs of one flow on the same data at the same time, sharing the answer cache and the output.

Each process has its own Prefect client and asks for what it does not find in the cache; both
write the same answer keys and publish the same output path. Both must finish Completed with every
row, the published dataset must be whole, and every cached answer must read back whole.
"""

from __future__ import annotations

import subprocess

import pytest
from flow_process import BATCHES, ROWS, flow_command, flow_env, instruction, leftovers, locations, run_flow

from distilflow.storage import AnswerStore, read_rows


@pytest.mark.parametrize("where", ["local", "s3"])
def test_two_simultaneous_runs_share_results_without_corruption(where, prefect_api, slow_sim, instructions, tmp_path, request):
    output, results = locations(where, tmp_path, request)
    env = flow_env(slow_sim)
    command = flow_command(instructions, output, results)

    runs = [subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outcomes = [run.communicate(timeout=240) for run in runs]
    for run, (stdout, stderr) in zip(runs, outcomes):
        assert run.returncode == 0, stdout[-2000:] + stderr[-4000:]
        assert f"Wrote {ROWS} rows" in stdout
    sent = slow_sim.stats()["requests"]
    assert ROWS <= sent <= 2 * ROWS  # a request both runs missed at once is sent twice, never more

    rows = list(read_rows(output))
    assert [r["instruction"] for r in rows] == [instruction(i) for i in range(ROWS)]
    assert all(r["generation"] and r["model_name"] == "sim-model" for r in rows)
    assert leftovers(output) == []

    store = AnswerStore(results)
    assert len(store) == ROWS  # one answer per request, whichever run wrote it last
    answers = store.get_many(store.keys())  # a mixed or cut answer would not read back
    assert len(answers) == ROWS
    assert sorted(a["generations"][0] for a in answers.values()) == sorted(r["generation"] for r in rows)

    slow_sim.reset()
    again = run_flow(command, env, tmp_path)
    assert slow_sim.stats()["requests"] == 0
    assert f"({BATCHES}/{BATCHES} batches from cache)" in again.stdout
    assert list(read_rows(output)) == rows
