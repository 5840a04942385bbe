"""Flow runs started on this machine, so the ones whose process died do not stay RUNNING.

A flow run's process that is killed (kill -9, a machine that lost power) or that lost its Prefect
API cannot report its end: the server would show it RUNNING forever. Each flow run a distilflow
run starts here is recorded while it runs (`$DISTILFLOW_HOME/flow-runs/<id>.json`: the API URL,
this host, the pid and when that process started), and forgotten when the process ends. The
next run against the same API (`mark_crashed`, called as a run starts) marks the flow runs of
recorded processes that are gone Crashed, with the reason, unless they reached a final state.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any, Union

__all__ = ["is_kept_server", "mark_crashed", "record_current_flow_run"]

_log = logging.getLogger("distilflow.runner")
_recorded: set[Path] = set()
_lock = threading.Lock()


def _folder() -> Path:
    from distilflow.local_server import home

    return home() / "flow-runs"


def is_kept_server(api_url: str) -> bool:
    """Whether `api_url` is (or was, if it died) the Prefect server distilflow keeps."""
    from distilflow.local_server import server_record

    record = server_record() or {}
    return str(record.get("api_url", "")).rstrip("/") == api_url.rstrip("/")


def record_current_flow_run() -> None:
    """Record the flow run this thread runs in, if it runs against a Prefect API with a URL."""
    from prefect.context import FlowRunContext
    from prefect.settings import PREFECT_API_URL

    context = FlowRunContext.get()
    api_url = PREFECT_API_URL.value()
    if context is None or context.flow_run is None or not api_url:
        return
    path = _folder() / f"{context.flow_run.id}.json"
    with _lock:
        if path in _recorded:
            return
        first = not _recorded
        _recorded.add(path)
        if first:
            atexit.register(_forget_all)
    if first:
        mark_crashed(api_url)  # runs an earlier process left RUNNING against this API
    record = {
        "api_url": api_url, "kept_server": is_kept_server(api_url), "host": socket.gethostname(), "pid": os.getpid(),
        "started": _process_start(os.getpid()),
    }
    with contextlib.suppress(OSError):
        _private_folder(path.parent)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(record, handle)


def _forget_all() -> None:
    with _lock:
        for path in _recorded:
            path.unlink(missing_ok=True)
        _recorded.clear()


def mark_crashed(api_url: str) -> int:
    """Mark Crashed the flow runs recorded against `api_url` whose process is gone; how many."""
    folder = _folder()
    try:
        paths = sorted(folder.glob("*.json"))
    except OSError:
        return 0
    # the kept server starts on a new port each time, with the same database
    kept = is_kept_server(api_url)
    dead = []
    for path in paths:
        record = _read(path)
        if record is None:
            path.unlink(missing_ok=True)
            continue
        same_server = record.get("api_url") == api_url or (kept and record.get("kept_server"))
        if same_server and record.get("host") == socket.gethostname() and not _alive(record):
            dead.append((path, record))
    if not dead:
        return 0
    marked = 0
    try:
        marked = _mark(dead)
    except Exception as e:  # noqa: BLE001 - the API may be down too: the next run tries again
        _log.warning("distilflow: could not mark the flow runs of ended processes Crashed: %s", e)
    return marked


def _mark(dead: list[tuple[Path, dict[str, Any]]]) -> int:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    marked = 0
    with get_client(sync_client=True) as client:
        for path, record in dead:
            flow_run_id = path.stem
            try:
                flow_run = client.read_flow_run(flow_run_id)
            except ObjectNotFound:
                path.unlink(missing_ok=True)
                continue
            if flow_run.state is not None and not flow_run.state.is_final():
                client.set_flow_run_state(
                    flow_run_id,
                    Crashed(message=(
                        f"The process running this flow run (pid {record['pid']} on {record['host']}) ended without "
                        "reporting its end: it was killed, or it lost its Prefect API. Every answer it received is "
                        "in the answer cache: running the same command again sends only the rest."
                    )),
                    force=True,
                )
                marked += 1
            path.unlink(missing_ok=True)
    return marked


def _read(path: Path) -> Union[dict[str, Any], None]:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("pid"), int) else None


def _alive(record: dict[str, Any]) -> bool:
    """Whether the recorded process still runs (and is the same one, not a new one with its pid)."""
    from distilflow.local_server import process_alive

    if not process_alive(record["pid"]):
        return False
    started = _process_start(record["pid"])
    return started is None or record.get("started") is None or started == record["started"]


def _process_start(pid: int) -> Union[int, None]:
    """When process `pid` started, in clock ticks since boot (Linux), to tell a reused pid apart;
    None where /proc cannot say."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[-1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _private_folder(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
