"""A local Prefect server that distilflow starts once and later runs reuse, with a warm runner.

`python flows/<name>.py` and pipeline scripts (`pipeline.main()`, `pipeline.run()`) need a Prefect API. Without one (no PREFECT_API_URL), Prefect would
start a temporary server for every run and stop it at exit: seconds per run, and the runs'
history and UI gone with it. Instead the first run starts a server on loopback, says so, and
leaves it running for later runs (and for you: its UI shows every run). Its database and log
are under `$DISTILFLOW_HOME` (default `~/.distilflow`).

Next to it, for those who opt in (DISTILFLOW_WARM=1, or `distilflow-server warm`), can run the
warm runner (`distilflow.tasks.runner.warm_runner`): a process with Prefect, openai and
distilflow imported, which later `python flows/<name>.py` runs hand themselves to, skipping about
two seconds of imports. Its log is `warm-runner.log` there.

    distilflow-server status | start | stop | restart | warm   (or `python -m distilflow.flows.local_server ...`)

`DISTILFLOW_LOCAL_SERVER=0` turns this off: each run then gets Prefect's temporary server.
`DISTILFLOW_WARM=0` hands no script to a runner, even one that is up.
A PREFECT_API_URL you set (or a Prefect profile's) always wins.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union

import httpx

from distilflow._handoff import environment_at_start, home_dir, runner_answers, warm_disabled, warm_opted_in
from distilflow.tasks.runner.warm_runner import process_alive, runner_env

__all__ = ["ensure_local_server", "keep_warm_runner", "local_server_url", "stop_local_server"]

STARTUP_SECONDS = 90
#: seconds a temporary Prefect server may take to start (Prefect's own limit is 20)
TEMPORARY_SERVER_STARTUP_SECONDS = 120


def home() -> Path:
    return Path(home_dir())


def _record() -> Path:
    return home() / "prefect-server.json"


def _server_record() -> Union[dict, None]:
    """What the first run recorded of the server it started (`api_url`, `pid`), if anything."""
    try:
        return json.loads(_record().read_text())
    except (OSError, ValueError):
        return None


def _running_server() -> Union[dict, None]:
    record = _server_record()
    return record if record and record.get("api_url") and _healthy(record["api_url"]) else None


def local_server_url() -> Union[str, None]:
    """The API URL of the server distilflow keeps, if it is up."""
    record = _running_server()
    return record["api_url"] if record else None


def ensure_local_server(say=None) -> Union[str, None]:
    """The API URL runs should use: none when the user configured one or turned this off."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value() or os.environ.get("DISTILFLOW_LOCAL_SERVER", "1") in ("0", "false", "no"):
        return None
    url = local_server_url()
    if url:
        return url
    with _lock():
        url = local_server_url()  # another run may have started it meanwhile
        return url or _start(say or (lambda text: print(text, file=sys.stderr)))["api_url"]


@contextlib.contextmanager
def prefect_api_for_a_run(more_settings: Union[dict[Any, Any], None] = None) -> Iterator[Union[str, None]]:
    """Prefect's settings for a run started here (the kept server's URL, unless the user has an API
    or turned it off), with `more_settings` (Prefect settings objects to values); yields the URL."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

    settings = dict(more_settings or {})
    url = ensure_local_server()
    if url:
        settings[PREFECT_API_URL] = url
    elif PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value() < TEMPORARY_SERVER_STARTUP_SECONDS:
        # A temporary server (DISTILFLOW_LOCAL_SERVER=0) with a new database migrates it first:
        # 16 s on a 2-core machine, more when it is busy, and Prefect gives up after 20.
        settings[PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS] = TEMPORARY_SERVER_STARTUP_SECONDS
    with temporary_settings(updates=settings):
        yield url


def keep_warm_runner() -> None:
    """Start the warm runner next to the kept server, unless it is up, starting, or turned off.

    Runs call this when they are done, so its imports do not compete with theirs for the CPU; only
    with DISTILFLOW_WARM=1 (`distilflow-server warm` starts one by hand)."""
    if not warm_opted_in() or runner_answers():
        return
    with _lock():
        record = _running_server()
        if record:
            _keep_runner(record["pid"])


def stop_local_server() -> bool:
    """Stop the kept server and the warm runner; False when neither was recorded."""
    stopped = stop_warm_runner()
    record = _server_record()
    if record is None:
        return stopped
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(record["pid"], signal.SIGTERM)
    _record().unlink(missing_ok=True)
    return True


def stop_warm_runner() -> bool:
    pid = _recorded_runner()
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)  # the runner alone: scripts it is running finish on their own
    deadline = time.monotonic() + 10
    while process_alive(pid) and time.monotonic() < deadline:  # gone before another takes its socket
        time.sleep(0.05)
    _runner_record().unlink(missing_ok=True)
    return True


def _runner_record() -> Path:
    return home() / "warm-runner.json"


def _recorded_runner() -> Union[int, None]:
    try:
        return int(json.loads(_runner_record().read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _keep_runner(server_pid: Union[int, None]) -> None:
    """Start the warm runner unless it is up or starting; with `server_pid`, it ends with that server.
    Called under `_lock()` (which also makes the home directory)."""
    if warm_disabled() or runner_answers():
        return
    pid = _recorded_runner()
    if pid is not None and process_alive(pid):
        return  # still importing: it answers in a moment
    log = open(home() / "warm-runner.log", "ab")  # noqa: SIM115 - the runner keeps it
    # the caller's environment as its script started (no keys), so its import-time settings match
    process = subprocess.Popen(
        [sys.executable, "-m", "distilflow.tasks.runner.warm_runner", *([str(server_pid)] if server_pid else [])],
        env=runner_env(environment_at_start()), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    _runner_record().write_text(json.dumps({"pid": process.pid}))


def _start(say) -> dict:
    """Start the kept server, record it and say so; its record (`api_url`, `pid`)."""
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    prefect_home = home() / "prefect"
    prefect_home.mkdir(parents=True, exist_ok=True)
    # PATH, locale and Prefect's settings (its database's too), not a run's model or storage keys
    env = {**runner_env(os.environ), **{k: v for k, v in os.environ.items() if k.startswith("PREFECT_SERVER")}}
    env.update(
        PREFECT_HOME=str(prefect_home), PREFECT_UI_API_URL=api_url, PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
    )
    log = open(home() / "prefect-server.log", "ab")  # noqa: SIM115 - the server keeps it
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    while not _healthy(api_url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the local Prefect server did not start; see {home() / 'prefect-server.log'}")
        time.sleep(0.2)
    record = {"api_url": api_url, "pid": process.pid}
    _record().write_text(json.dumps(record))
    warm = ", with a warm runner that starts them in about a second" if warm_opted_in() else ""
    say(
        f"distilflow started a local Prefect server at {api_url.removesuffix('/api')} (pid {process.pid}; "
        f"its UI shows your runs) and keeps it for later runs{warm}. Stop it with `distilflow-server stop`; "
        "DISTILFLOW_LOCAL_SERVER=0 runs each flow on a temporary server instead."
    )
    return record


def _healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def _lock():
    import fcntl

    home().mkdir(parents=True, exist_ok=True)
    with open(home() / "prefect-server.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # two first runs at once start one server
        yield


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _runner_ready() -> bool:
    """Wait for the runner just started to answer (its imports take a few seconds)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while not runner_answers():
        pid = _recorded_runner()
        if time.monotonic() > deadline or pid is None or not process_alive(pid):
            print(f"the warm runner did not start; see {home() / 'warm-runner.log'}")
            return False
        time.sleep(0.2)
    return True


def main(argv: Union[list[str], None] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="distilflow-server", description=__doc__.splitlines()[0],
        epilog="warm: (re)start only the warm runner, for this environment: with a Prefect server of your own "
        "(PREFECT_API_URL), or after the environment changed.",
    )
    parser.add_argument("action", choices=["status", "start", "stop", "restart", "warm"])
    action = parser.parse_args(argv).action
    if action in ("stop", "restart"):
        print("stopped" if stop_local_server() else "no local server is recorded")
        if action == "stop":
            return 0
    if action == "warm":
        stop_warm_runner()
        if warm_disabled():
            print("DISTILFLOW_WARM=0 is set: no warm runner")
            return 2
        with _lock():
            _keep_runner(None)
        if not _runner_ready():
            return 1
    elif action != "status":
        with _lock():
            record = _running_server() or _start(print)
            if warm_opted_in():
                _keep_runner(record["pid"])
        if warm_opted_in() and not _runner_ready():
            return 1
    url = local_server_url()
    print(url.removesuffix("/api") if url else "local Prefect server: not running")
    print(f"warm runner: {'ready' if runner_answers() else 'not running'} (log: {home() / 'warm-runner.log'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
