"""A flow run killed with SIGKILL half way, then run again: the same dataset, and only unfinished work re-sent.

The flow runs as a user runs it (`python flows/text_generation.py`), in its own process, against
the session's Prefect server and a simulator with latency. Finished batches are counted in the
result storage the moment the process is dead; the re-run must send exactly the requests of the
other batches, and its output must equal an uninterrupted run's, row for row.
"""

from __future__ import annotations

import pytest
from flow_process import (
    BATCH, BATCHES, IN_FLIGHT, ROWS, finished_batches, flow_command, flow_env, instruction, kill_when_batches_done,
    leftovers, locations, run_flow,
)

from storage import filesystem, read_rows


@pytest.mark.parametrize("where", ["local", "s3"])
def test_killed_flow_resumes_with_only_unfinished_batches_resent(where, prefect_api, slow_sim, instructions, tmp_path, request):
    output, results = locations(where, tmp_path, request)
    reference_output, reference_results = locations(where, tmp_path, request, name="reference")
    env = flow_env(slow_sim)

    # An uninterrupted run, for the expected dataset.
    run_flow(flow_command(instructions, reference_output, reference_results), env, tmp_path)
    expected = list(read_rows(reference_output))
    assert len(expected) == ROWS and slow_sim.stats()["requests"] == ROWS
    slow_sim.reset()

    # Killed once three batches are stored: nothing published, the paid-for batches kept.
    kill_when_batches_done(flow_command(instructions, output, results), env, tmp_path, results, done=3)
    finished = finished_batches(results)
    sent_before_kill = slow_sim.stats()["requests"]
    assert 3 <= finished < BATCHES
    assert finished * BATCH <= sent_before_kill <= (finished + IN_FLIGHT) * BATCH  # at most the batches in flight
    fs, output_path = filesystem(output)
    assert not fs.exists(output_path)

    slow_sim.reset()
    rerun = run_flow(flow_command(instructions, output, results), env, tmp_path)
    assert slow_sim.stats()["requests"] == (BATCHES - finished) * BATCH  # only what had not finished
    assert f"({finished}/{BATCHES} batches from cache)" in rerun.stdout
    rows = list(read_rows(output))
    assert rows == expected  # same rows, same order
    assert [r["instruction"] for r in rows] == [instruction(i) for i in range(ROWS)]  # no duplicates
    assert leftovers(output) == []  # the killed run's staging was removed by the re-run's commit
