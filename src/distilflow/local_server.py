"""A local Prefect server that distilflow starts once and later runs reuse.

`python flows/<name>.py` and pipeline scripts (`pipeline.main()`, `pipeline.run()`) need a Prefect
API. Without one (no PREFECT_API_URL), Prefect would start a temporary server for every run and
stop it at exit: seconds per run, and the runs' history and UI gone with it. Instead the first run
starts a server on loopback, says so, and leaves it running for later runs (and for you: its UI
shows every run). Its database and log are under `$DISTILFLOW_HOME` (default `~/.distilflow`),
readable by you alone.

    distilflow-server status | start | stop | restart   (or `python -m distilflow.flows.local_server ...`)

`DISTILFLOW_LOCAL_SERVER=0` turns this off: each run then gets Prefect's temporary server.
A PREFECT_API_URL you set (or a Prefect profile's) always wins.

Prefect is imported only by what needs its settings: `distilflow-server status` answers in a
fraction of a second.
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

__all__ = [
    "ensure_local_server", "home", "local_server_url", "prefect_api_for_a_run", "process_alive", "stop_local_server",
]

STARTUP_SECONDS = 90
#: seconds a temporary Prefect server may take to start (Prefect's own limit is 20)
TEMPORARY_SERVER_STARTUP_SECONDS = 120
#: Variables the server starts with: what an interpreter and Prefect read, never a run's keys.
SERVER_ENV_PREFIXES = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_", "TZ", "TMPDIR", "VIRTUAL_ENV", "PYTHON",
                       "PREFECT_", "DISTILFLOW_", "DO_NOT_TRACK")
SECRET_WORDS = ("KEY", "SECRET", "PASSWORD", "TOKEN", "AUTH", "CONNECTION_URL", "CREDENTIAL")


def home() -> Path:
    """`$DISTILFLOW_HOME`, default `~/.distilflow`: the kept server, its database and the answer cache."""
    return Path(os.path.expanduser(os.environ.get("DISTILFLOW_HOME") or os.path.join("~", ".distilflow")))


def private_home() -> Path:
    """`home()`, made if missing, entered and read by this user alone (generated text can be private)."""
    path = home()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # made by an earlier version, or by hand
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write `path` as a file only its owner can read (0600), whatever the umask."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with contextlib.suppress(OSError):
        os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def process_alive(pid: int) -> bool:
    """Running (a zombie, ended but not yet reaped by its parent, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:  # reaped since the kill above, unless there is no /proc to look in
        return not os.path.isdir("/proc/self")
    except (OSError, IndexError):
        return True


def _record() -> Path:
    return home() / "prefect-server.json"


def server_record() -> Union[dict, None]:
    """What the first run recorded of the server it started (`api_url`, `pid`), if anything."""
    try:
        return json.loads(_record().read_text())
    except (OSError, ValueError):
        return None


def _running_server() -> Union[dict, None]:
    record = server_record()
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


def stop_local_server() -> bool:
    """Stop the kept server; False when none was recorded."""
    record = server_record()
    if record is None:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(record["pid"], signal.SIGTERM)
    _record().unlink(missing_ok=True)
    return True


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k.startswith(SERVER_ENV_PREFIXES) and k != "PREFECT_API_URL" and not any(w in k for w in SECRET_WORDS)}
    # Prefect's server settings, its database's connection URL included
    env.update({k: v for k, v in os.environ.items() if k.startswith("PREFECT_SERVER")})
    return env


def _start(say) -> dict:
    """Start the kept server, record it and say so; its record (`api_url`, `pid`). Called under `_lock()`."""
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    prefect_home = home() / "prefect"
    prefect_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    prefect_home.chmod(0o700)  # its database holds every prompt and answer the runs logged
    env = _server_env()
    env.update(
        PREFECT_HOME=str(prefect_home), PREFECT_UI_API_URL=api_url, PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
    )
    log_path = home() / "prefect-server.log"
    log = os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    with contextlib.suppress(OSError):
        os.fchmod(log.fileno(), 0o600)
    with log:  # the server holds its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            umask=0o077,  # its database and what else it writes: this user's alone
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    while not _healthy(api_url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the local Prefect server did not start; see {log_path}")
        time.sleep(0.2)
    record = {"api_url": api_url, "pid": process.pid}
    write_private(_record(), json.dumps(record))
    say(
        f"distilflow started a local Prefect server at {api_url.removesuffix('/api')} (pid {process.pid}; "
        "its UI shows your runs) and keeps it for later runs. Stop it with `distilflow-server stop`; "
        "DISTILFLOW_LOCAL_SERVER=0 runs each flow on a temporary server instead."
    )
    return record


def _healthy(api_url: str) -> bool:
    import urllib.error
    import urllib.request

    # urllib, not httpx: `status` must not pay for an HTTP stack's imports; no proxy for loopback
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{api_url}/health", timeout=1.0) as response:
            return response.status == 200
    except (OSError, ValueError, urllib.error.URLError):
        return False


@contextlib.contextmanager
def _lock():
    import fcntl

    descriptor = os.open(private_home() / "prefect-server.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # two first runs at once start one server
        yield


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: Union[list[str], None] = None) -> int:
    parser = argparse.ArgumentParser(prog="distilflow-server", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["status", "start", "stop", "restart"])
    action = parser.parse_args(argv).action
    if action in ("stop", "restart"):
        print("stopped" if stop_local_server() else "no local server is recorded")
        if action == "stop":
            return 0
    if action != "status":
        with _lock():
            if not _running_server():
                _start(print)
    url = local_server_url()
    print(url.removesuffix("/api") if url else "local Prefect server: not running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
