"""A flow run killed with SIGKILL half way through its batches, then run again.

The flow runs as a user runs it (`python flows/text_generation.py`), in its own process, against
the session's Prefect server and a simulator with varying latency, with batches of 500: a kill
lands in the middle of every batch in flight. Each answer is stored the moment it arrives, so the
re-run must send exactly the requests whose answers were not stored, those must be no more than
the requests the server had not answered plus the few in transit or being written when the
process died, and the dataset must equal an uninterrupted run's, row for row.
"""

from __future__ import annotations

import time

import pytest
from flow_process import (
    flow_command, flow_env, instruction, kill_when_answers_stored, leftovers, locations, run_flow, stored_answers,
    write_instructions,
)

from distilflow.storage import filesystem, read_rows
from distilflow.answers import FLUSH_ANSWERS, MAX_BACKLOG
from distilflow.simulator import Simulator

ROWS, BATCH, BATCHES_AT_ONCE = 1000, 500, 2
REQUESTS_AT_ONCE = 16
# Answers the killed process may have lost: those the server had sent but the client had not read
# (at most the requests in flight), those waiting for their group's write and those queued for the
# writer (the answer cache's bounds on both).
WINDOW = REQUESTS_AT_ONCE + FLUSH_ANSWERS + MAX_BACKLOG


@pytest.fixture
def varying_sim():
    with Simulator(latency=0.05, latency_jitter=0.1) as sim:  # 50-150 ms an answer
        yield sim


@pytest.mark.parametrize("where", ["local", "s3"])
def test_killed_flow_resends_only_what_was_not_answered(where, prefect_api, varying_sim, tmp_path, request):
    sim = varying_sim
    instructions = write_instructions(tmp_path / "instructions.jsonl", ROWS)
    output, results = locations(where, tmp_path, request)
    reference_output, reference_results = locations(where, tmp_path, request, name="reference")
    env = flow_env(sim)

    def command(out: str, res: str) -> list[str]:
        return flow_command(instructions, out, res, batch=BATCH, in_flight=BATCHES_AT_ONCE, requests=REQUESTS_AT_ONCE)

    # An uninterrupted run, for the expected dataset.
    run_flow(command(reference_output, reference_results), env, tmp_path)
    expected = list(read_rows(reference_output))
    assert len(expected) == ROWS and sim.stats()["requests"] == ROWS
    sim.reset()

    # Killed once 300 answers are stored: both batches of 500 are half done, nothing is published.
    kill_when_answers_stored(command(output, results), env, tmp_path, results, stored=300)
    time.sleep(0.3)  # requests the server was still answering finish (their client is gone)
    answered = sim.stats()["by_status"].get("200", 0)
    stored = stored_answers(results)
    assert 300 <= stored < ROWS
    assert answered - WINDOW <= stored <= answered
    print(f"answered {answered}, stored {stored} when killed")
    fs, output_path = filesystem(output)
    assert not fs.exists(output_path)

    sim.reset()
    rerun = run_flow(command(output, results), env, tmp_path)
    sent = sim.stats()["requests"]
    assert sent == ROWS - stored  # exactly the requests whose answers were not stored
    assert sent <= ROWS - answered + WINDOW  # the unanswered ones, plus what was in transit
    assert f"(0/2 batches from cache, {stored} of {ROWS} answers from cache)" in rerun.stdout
    rows = list(read_rows(output))
    assert rows == expected  # same rows, same order
    assert [r["instruction"] for r in rows] == [instruction(i) for i in range(ROWS)]  # no duplicates
    assert leftovers(output) == []  # the killed run's staging was removed by the re-run's commit
