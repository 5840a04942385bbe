"""The warm runner: a script that starts with imports runs in a process forked from one that has
Prefect and distilflow imported, as if it ran on its own (argv, directory, environment, stdin,
exit status, signals, files); anything it cannot run exactly so runs in the caller's process."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distilflow.tasks.runner.warm_runner import process_alive, runner_env

# Prints where and how it ran. `prefect` is already imported only in the runner's copy:
# `import distilflow` alone does not import it.
PROBE = '''"""A script as users write them: imports first."""
import json
import os
import sys

import distilflow

print(json.dumps({
    "pid": os.getpid(), "warm": "prefect" in sys.modules, "argv": sys.argv, "cwd": os.getcwd(),
    "value": os.environ.get("WARM_TEST_VALUE"), "key": os.environ.get("OPENAI_API_KEY"),
    "stdin": sys.stdin.read(), "name": __name__, "file": __file__,
}))
print("to stderr", file=sys.stderr)
sys.exit(int(os.environ.get("WARM_TEST_EXIT", "0")))
'''


def _base_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DISTILFLOW_WARM"))}
    env["DISTILFLOW_HOME"] = str(home)
    return env


def _start_runner(env: dict) -> subprocess.Popen:
    home = Path(env["DISTILFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "warm-runner.log", "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "distilflow.tasks.runner.warm_runner"], env=runner_env(env),
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while "ready" not in (home / "warm-runner.log").read_text():
        assert process.poll() is None, (home / "warm-runner.log").read_text()
        assert time.monotonic() < deadline, "the warm runner did not get ready"
        time.sleep(0.1)
    return process


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    env = _base_env(tmp_path_factory.mktemp("warm") / "home")
    process = _start_runner(env)
    yield env
    process.terminate()
    process.wait(timeout=30)


def _run(script: Path, env: dict, *args: str, stdin: str = "", **extra_env: str) -> tuple[subprocess.Popen, str, str]:
    process = subprocess.Popen([sys.executable, str(script), *args], env={**env, **extra_env}, cwd=script.parent,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate(stdin, timeout=120)
    return process, out, err


def _log(env: dict) -> str:
    return (Path(env["DISTILFLOW_HOME"]) / "warm-runner.log").read_text()


def test_a_script_runs_in_the_runner_with_the_callers_argv_directory_environment_stdin_and_status(runner, tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    process, out, err = _run(script, runner, "--flag", "x y", stdin="rows on stdin\n", WARM_TEST_VALUE="caller's",
                             WARM_TEST_EXIT="7", OPENAI_API_KEY="sk-of-this-caller")
    assert process.returncode == 7, err
    seen = json.loads(out)
    assert seen["warm"] is True and seen["pid"] != process.pid
    assert seen["argv"] == [str(script), "--flag", "x y"]
    assert seen["cwd"] == str(tmp_path)
    assert seen["value"] == "caller's" and seen["key"] == "sk-of-this-caller"
    assert seen["stdin"] == "rows on stdin\n"
    assert (seen["name"], seen["file"]) == ("__main__", str(script))
    assert err == "to stderr\n"
    assert f"running {script} for pid {process.pid}" in _log(runner)


def test_a_script_that_does_anything_but_import_first_runs_in_its_own_process(runner, tmp_path):
    script = tmp_path / "eager.py"
    script.write_text('print("before", flush=True)\n' + PROBE)
    process, out, _ = _run(script, runner)
    assert process.returncode == 0
    before, line = out.splitlines()
    assert before == "before"  # printed once: the script was not run again elsewhere
    seen = json.loads(line)
    assert seen["warm"] is False and seen["pid"] == process.pid


def test_a_module_next_to_the_script_that_would_shadow_one_the_runner_imported_keeps_it_out(runner, tmp_path):
    (tmp_path / "httpx.py").write_text("LOCAL = True\n")
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    process, out, err = _run(script, runner)
    assert process.returncode == 0
    assert json.loads(out)["pid"] == process.pid
    assert f"{tmp_path / 'httpx'} would shadow the module 'httpx'" in err


def test_another_environment_is_refused_with_a_note_and_runs_on_its_own(runner, tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    process, out, err = _run(script, runner, PREFECT_LOGGING_LEVEL="DEBUG" if runner.get("PREFECT_LOGGING_LEVEL") != "DEBUG" else "INFO")
    assert process.returncode == 0
    assert json.loads(out)["pid"] == process.pid
    assert "the warm runner did not take this script (the environment differs in PREFECT_LOGGING_LEVEL)" in err


def test_an_uncaught_exception_is_reported_from_the_script_and_exits_1(runner, tmp_path):
    script = tmp_path / "fails.py"
    script.write_text("import distilflow\n\n\ndef build():\n    raise ValueError('bad column')\n\n\nbuild()\n")
    process, _, err = _run(script, runner)
    assert process.returncode == 1
    assert f'File "{script}", line 8, in <module>' in err and "ValueError: bad column" in err
    assert "warm_runner" not in err  # the traceback starts at the script, as Python's own does
    assert f"running {script} for pid {process.pid}" in _log(runner)


def test_files_a_script_leaves_open_are_complete_when_it_ends(runner, tmp_path):
    script = tmp_path / "leaves_open.py"
    script.write_text(
        "import gzip\nimport distilflow\n"
        "text = open('rows.txt', 'w')\ntext.write('row 1\\n' * 1000)\n"
        "packed = gzip.open('rows.txt.gz', 'wt')\npacked.write('row 2\\n' * 1000)\n"
    )
    process, _, err = _run(script, runner)
    assert process.returncode == 0, err
    assert f"running {script} for pid {process.pid}" in _log(runner)
    assert (tmp_path / "rows.txt").read_text() == "row 1\n" * 1000
    assert gzip.open(tmp_path / "rows.txt.gz", "rt").read() == "row 2\n" * 1000


SLEEPER = '''import os
import signal
import sys
import time

import distilflow

signal.signal(signal.SIGTERM, lambda *_: (open("terminated", "w").close(), sys.exit(143)))
print(os.getpid(), flush=True)
try:
    time.sleep(120)
except KeyboardInterrupt:
    open("interrupted", "w").close()
    raise
'''


def _start_sleeper(tmp_path: Path, env: dict) -> tuple[subprocess.Popen, int]:
    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    process = subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    script_pid = int(process.stdout.readline())
    assert script_pid != process.pid  # it runs in the runner's copy
    return process, script_pid


def test_ctrl_c_on_the_caller_interrupts_the_script_and_the_caller_ends_by_the_same_signal(runner, tmp_path):
    process, _ = _start_sleeper(tmp_path, runner)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == -signal.SIGINT
    assert (tmp_path / "interrupted").exists()
    assert "KeyboardInterrupt" in process.stderr.read()


def test_a_killed_caller_takes_its_script_with_it(runner, tmp_path):
    process, script_pid = _start_sleeper(tmp_path, runner)
    process.kill()
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while not (tmp_path / "terminated").exists():
        assert time.monotonic() < deadline, "the script outlived its caller"
        time.sleep(0.1)
    while process_alive(script_pid):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_the_runner_holds_no_key_of_the_environment_it_was_started_from(tmp_path):
    env = {**_base_env(tmp_path / "home"), "OPENAI_API_KEY": "sk-starter-secret", "PREFECT_API_KEY": "pnu-secret"}
    process = _start_runner(env)
    try:
        environ = Path(f"/proc/{process.pid}/environ").read_bytes()
        assert b"sk-starter-secret" not in environ and b"pnu-secret" not in environ
        assert b"DISTILFLOW_HOME=" in environ
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "secret" not in _log(env)


def test_a_changed_module_retires_the_runner_and_the_script_runs_on_its_own(tmp_path):
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "warm_probe_module.py").write_text("VERSION = 1\n")
    env = _base_env(tmp_path / "home")
    env.update(PYTHONPATH=str(modules), DISTILFLOW_WARM_PRELOAD="warm_probe_module")
    process = _start_runner(env)
    try:
        script = tmp_path / "probe.py"
        script.write_text(PROBE)
        _, out, _ = _run(script, env)
        assert json.loads(out)["warm"] is True
        later = time.time() + 10
        os.utime(modules / "warm_probe_module.py", (later, later))  # an upgrade or an edit
        second, out, err = _run(script, env)
        assert second.returncode == 0, err
        assert json.loads(out)["pid"] == second.pid  # not served from the old imports
        assert process.wait(timeout=30) == 0
        assert "a module changed on disk" in _log(env)
        assert not Path(env["DISTILFLOW_HOME"], "warm-runner.sock").exists()
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.usefixtures("prefect_api")
def test_with_a_prefect_server_of_your_own_distilflow_server_warm_serves_the_flows(tmp_path, sim):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import PREFECT_API_URL

    env = {**_base_env(tmp_path / "home"), "PREFECT_API_URL": PREFECT_API_URL.value(),
           "OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": "sk-test"}
    root = Path(__file__).resolve().parents[1]
    server = [sys.executable, "-m", "distilflow.flows.local_server"]
    (tmp_path / "one.jsonl").write_text('{"instruction": "What is a warm start?"}\n')

    def flow_runs() -> int:
        with get_client(sync_client=True) as client:
            return len(client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["text-generation"]))))

    before = flow_runs()
    try:
        warm = subprocess.run([*server, "warm"], env=env, capture_output=True, text=True, timeout=180)
        assert warm.returncode == 0, warm.stdout + warm.stderr
        assert "local Prefect server: not running" in warm.stdout  # distilflow kept none: the user's is used
        assert "warm runner: ready" in warm.stdout
        run = subprocess.Popen([sys.executable, str(root / "flows" / "text_generation.py"), "--input", "one.jsonl",
                                "--output", "out.jsonl"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        out, err = run.communicate(timeout=180)
        assert run.returncode == 0, err
        requests = sim.stats()["requests"]
        # a flow whose step keeps a worker process (and a thread reading its answers) ends too
        apigen = subprocess.Popen([sys.executable, str(root / "flows" / "apigen.py"), "--limit", "2", "--output",
                                   "apigen.jsonl"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        apigen_out, apigen_err = apigen.communicate(timeout=180)
        assert apigen.returncode == 0, apigen_err
    finally:
        stopped = subprocess.run([*server, "stop"], env=env, capture_output=True, text=True, timeout=60)
    assert f"running {root / 'flows' / 'text_generation.py'} for pid {run.pid}" in _log(env)
    assert "Wrote 1 rows" in out and json.loads((tmp_path / "out.jsonl").read_text())["generation"]
    assert flow_runs() == before + 1  # on the user's server
    assert requests == 1
    assert f"running {root / 'flows' / 'apigen.py'} for pid {apigen.pid}" in _log(env)
    assert "execute: 2 inputs -> 2 rows" in apigen_out and (tmp_path / "apigen.jsonl").exists()
    assert stopped.stdout.strip() == "stopped"
    assert not Path(env["DISTILFLOW_HOME"], "warm-runner.json").exists()
