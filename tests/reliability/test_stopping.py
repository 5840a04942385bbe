"""Runs stopped from outside, as a user's runs are: the kept Prefect server killed, SIGTERM.

Each test runs `python flows/text_generation.py` as its own process against a simulator, with
the Prefect server distilflow keeps in a home of the test's own (no PREFECT_API_URL), as a user's
first command does.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from distilflow.simulator import Simulator
from flow_process import ROOT, stored_answers, write_instructions

pytestmark = pytest.mark.reliability

SERVER_COMMAND = Path(sys.executable).parent / "distilflow-server"


def _env(tmp_path: Path, sim: Simulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_", "DISTILFLOW_"))}
    env.update(
        DISTILFLOW_HOME=str(tmp_path / "home"), OPENAI_BASE_URL=sim.base_url, OPENAI_API_KEY="sk-test",
        PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
    )
    return env


def _command(tmp_path: Path, rows: int, concurrency: int) -> list[str]:
    instructions = write_instructions(tmp_path / "in.jsonl", rows)
    return [
        sys.executable, str(ROOT / "flows" / "text_generation.py"), "--input", str(instructions),
        "--output", str(tmp_path / "out" / "rows.jsonl"), "--model.provider", "openai", "--model.model", "sim-model",
        "--run.batch-size", "20", "--run.result-storage", str(tmp_path / "answers"),
        "--model.max-concurrent-requests", str(concurrency),
    ]


def _start(command: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_answers(process: subprocess.Popen, tmp_path: Path, count: int) -> None:
    deadline = time.monotonic() + 120
    while stored_answers(str(tmp_path / "answers")) < count:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no answers were stored in time"
        time.sleep(0.05)


def _kept_server(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "home" / "prefect-server.json").read_text())


def _stop_kept_server(env: dict[str, str]) -> None:
    subprocess.run([str(SERVER_COMMAND), "stop"], env=env, capture_output=True, timeout=60)


def _kill_kept_server_once_answered(run: subprocess.Popen, tmp_path: Path, answers: int) -> tuple[dict, str, float]:
    """kill -9 the kept server once `answers` are stored; its record, the run's stderr, and how long
    the run took to end after the kill. The run's stdout is left in `run.stdout`."""
    _wait_for_answers(run, tmp_path, answers)
    server = _kept_server(tmp_path)
    os.kill(server["pid"], signal.SIGKILL)
    killed = time.monotonic()
    run.stdout, err = run.communicate(timeout=120)
    return server, err, time.monotonic() - killed


def test_a_lost_prefect_server_ends_the_run_with_its_name_and_the_next_run_finishes_it(tmp_path):
    rows = 600
    with Simulator(latency=0.4) as sim:
        env = _env(tmp_path, sim)
        command = _command(tmp_path, rows, concurrency=4)  # ~10 answers a second: the run outlasts the watch
        try:
            run = _start(command, env, tmp_path)
            server, err, ended = _kill_kept_server_once_answered(run, tmp_path, 20)
            sent_by_then = sim.stats()["requests"]
            time.sleep(1.5)
            assert sim.stats()["requests"] == sent_by_then, "requests went on after the run ended"
            stored = stored_answers(str(tmp_path / "answers"))

            assert run.returncode == 4, err[-3000:]
            assert ended < 40, f"the run took {ended:.0f} s to notice its lost server"
            last = err.strip().splitlines()[-1]
            assert last.startswith(f"error: lost the Prefect API at {server['api_url']}: no answer for 2"), last
            assert "connection refused" in last and "run the same command again" in last
            assert "Traceback" not in err
            assert not (tmp_path / "out" / "rows.jsonl").exists()
            assert stored < rows  # it stopped before the end

            again = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
            assert again.returncode == 0, again.stderr[-3000:]
            assert len((tmp_path / "out" / "rows.jsonl").read_text().splitlines()) == rows
            # the re-run bought only what was never stored
            assert sim.stats()["requests"] - sent_by_then == rows - stored
            # and the lost run, left RUNNING by its process, is Crashed now, with the reason
            api = _kept_server(tmp_path)["api_url"]
            runs = httpx.post(f"{api}/flow_runs/filter", json={"sort": "START_TIME_ASC"}).json()
        finally:
            _stop_kept_server(env)
    assert [r["state"]["type"] for r in runs] == ["CRASHED", "COMPLETED"]
    assert f"(pid {run.pid} on " in runs[0]["state"]["message"]
    assert not list((tmp_path / "home" / "flow-runs").glob("*.json"))


def test_sigterm_ends_a_run_whose_model_server_went_away_within_seconds(tmp_path):
    rows = 200
    sim = Simulator(latency=0.2).start()
    env = _env(tmp_path, sim)
    command = _command(tmp_path, rows, concurrency=8)
    try:
        run = _start(command, env, tmp_path)
        _wait_for_answers(run, tmp_path, 30)
        sim.stop()  # gone for good: every request now waits on a refused connection
        time.sleep(2)
        stored = stored_answers(str(tmp_path / "answers"))
        run.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        out, err = run.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        sim.stop()
        _stop_kept_server(env)
    assert run.returncode == 143, err[-3000:]
    assert took < 10, f"SIGTERM took {took:.1f} s"
    assert "stopped by SIGTERM: every answer received so far is kept" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "rows.jsonl").exists()
    assert stored_answers(str(tmp_path / "answers")) >= stored


def test_a_model_server_gone_for_good_is_said_while_waited_for_and_ends_the_run(tmp_path):
    rows = 200
    sim = Simulator(latency=0.2).start()
    env = _env(tmp_path, sim)
    command = [*_command(tmp_path, rows, concurrency=8), "--model.max-outage-seconds", "30"]
    try:
        run = _start(command, env, tmp_path)
        _wait_for_answers(run, tmp_path, 30)
        sim.stop()
        stopped = time.monotonic()
        out, err = run.communicate(timeout=120)
        took = time.monotonic() - stopped
        stored = stored_answers(str(tmp_path / "answers"))
        written = (tmp_path / "out" / "rows.jsonl").exists()
        with Simulator(latency=0.01) as back:  # the server is back, elsewhere: a re-run sends only the rest
            again = subprocess.run([*command, "--model.base-url", back.base_url], env=env, cwd=tmp_path,
                                   capture_output=True, text=True, timeout=240)
            resent = back.stats()["requests"]
    finally:
        sim.stop()
        _stop_kept_server(env)
    assert run.returncode == 4, err[-3000:]
    assert 30 <= took < 60, took
    # one as it starts (the first failure may be a connection the stopping server cut), one at least every 25 s
    waiting = [line for line in err.splitlines() if f"the model server at {sim.base_url} does not answer (" in line]
    assert len(waiting) >= 2, err[-3000:]
    assert "does not answer (connection refused) for 2" in waiting[-1]
    assert "requests wait for it" in waiting[-1] and "the run stops if no answer comes for another" in waiting[-1]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: the model server at {sim.base_url} has not answered for 3"), last
    assert "every answer it received is kept" in last
    assert not written
    assert again.returncode == 0, again.stderr[-3000:]
    assert resent == rows - stored


def test_nothing_listening_at_the_base_url_is_named_in_seconds(tmp_path):
    with Simulator() as sim:
        env = _env(tmp_path, sim)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    command = [*_command(tmp_path, 10, concurrency=4), "--model.base-url", url]
    try:
        subprocess.run([str(SERVER_COMMAND), "start"], env=env, capture_output=True, timeout=180, check=True)
        started = time.monotonic()
        done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        took = time.monotonic() - started
    finally:
        _stop_kept_server(env)
    assert done.returncode == 2, done.stderr[-3000:]
    assert took < 20, took  # the whole process, with the kept server up; the refusals take about 5 s
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: nothing is listening at {url} (connection refused for "), last
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "rows.jsonl").exists()


PIPELINE_RUN_SCRIPT = '''
import os
from distilflow.steps.tasks import TextGeneration
from distilflow.models import OpenAILLM
from distilflow.pipeline import Pipeline
from distilflow.steps import LoadDataFromDicts

with Pipeline(name="lost-api") as pipeline:
    load = LoadDataFromDicts(data=[{"instruction": f"question {i}"} for i in range(400)], batch_size=20)
    answer = TextGeneration(llm=OpenAILLM(model="sim-model", max_concurrent_requests=4), input_batch_size=20)
    load >> answer

pipeline.run()  # distilabel's idiom, in a plain script
print("finished")
'''


def test_a_lost_prefect_server_ends_a_plain_pipeline_run_script_with_its_name(tmp_path):
    """`pipeline.run()` in a user's script, not only the command lines, names a lost API in seconds."""
    script = tmp_path / "run_pipeline.py"
    script.write_text(PIPELINE_RUN_SCRIPT)
    with Simulator(latency=0.4) as sim:
        env = {**_env(tmp_path, sim), "DISTILFLOW_RESULTS": str(tmp_path / "answers")}
        try:
            run = _start([sys.executable, str(script)], env, tmp_path)
            server, err, ended = _kill_kept_server_once_answered(run, tmp_path, 12)
        finally:
            _stop_kept_server(env)
    assert run.returncode == 4, err[-3000:]
    assert ended < 40, f"the run took {ended:.0f} s to notice its lost server"
    assert err.strip().splitlines()[-1].startswith(f"error: lost the Prefect API at {server['api_url']}: no answer for 2")
    assert "Traceback" not in err and "finished" not in run.stdout
    assert stored_answers(str(tmp_path / "answers")) < 400
