"""Running `python flows/text_generation.py` as its own process against a test simulator, and looking at what it left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from prefect.settings import PREFECT_API_URL

from distilflow.storage import AnswerStore, filesystem
from distilflow.simulator import Simulator

ROOT = Path(__file__).resolve().parents[2]
ROWS, BATCH, IN_FLIGHT = 40, 4, 2
BATCHES = ROWS // BATCH
KEY = "sk-crash-test-key-0000"


def flow_command(instructions: Path, output: str, results: str, batch: int = BATCH, in_flight: int = IN_FLIGHT,
                 requests: int = 128) -> list[str]:
    return [
        sys.executable, str(ROOT / "flows" / "text_generation.py"), "--input", str(instructions), "--output", output,
        "--model.provider", "openai", "--model.model", "sim-model", "--run.batch-size", str(batch),
        "--run.max-concurrent-batches", str(in_flight), "--run.result-storage", results,
        "--model.max-concurrent-requests", str(requests),
    ]


def flow_env(sim: Simulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_"))}
    env.update(
        PREFECT_API_URL=PREFECT_API_URL.value(), OPENAI_BASE_URL=sim.base_url, OPENAI_API_KEY=KEY,
        PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
    )
    return env


def run_flow(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def stored_answers(results: str) -> int:
    """Answers whole in the answer cache (a listing; hidden temporary files are not answers yet)."""
    return len(AnswerStore(results))


def kill_when_answers_stored(command: list[str], env: dict[str, str], cwd: Path, results: str, stored: int) -> None:
    """Start the flow, SIGKILL its whole process group once `stored` answers are in the cache."""
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while stored_answers(results) < stored:
            assert process.poll() is None, f"the flow ended before it could be killed: {process.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "no answers were stored in time"
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(30)
        process.stderr.close()


def leftovers(output: str) -> list[str]:
    fs, path = filesystem(output)
    parent = path.rsplit("/", 1)[0]
    fs.invalidate_cache()
    return [n for n in fs.ls(parent, detail=False) if n.rsplit("/", 1)[-1].startswith(".")]


def write_instructions(path: Path, rows: int = ROWS) -> Path:
    path.write_text("".join(json.dumps({"instruction": instruction(i)}) + "\n" for i in range(rows)))
    return path


def instruction(i: int) -> str:
    return f"Explain topic {i} in one line."


def locations(where: str, tmp_path: Path, request, name: str = "out") -> tuple[str, str]:
    """(output, result storage) of a run, on local disk or in the test's S3 bucket."""
    if where == "s3":
        bucket = request.getfixturevalue("s3")
        return bucket.uri(f"{name}/rows.jsonl"), bucket.uri(f"{name}-results")
    return str(tmp_path / name / "rows.jsonl"), str(tmp_path / f"{name}-results")
