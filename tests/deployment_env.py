"""A Prefect server, a process work pool, this repository's deployments and a worker, as an operator
would start them (README, "Run it as a deployment"), on loopback, cleaned up afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
POOL = "distilflow"


def call_api(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """An HTTP call to a Prefect API, retried like Prefect's own client does when SQLite is busy."""
    for attempt in range(8):
        try:
            response = httpx.request(method, url, timeout=10, **kwargs)
            if response.status_code not in (502, 503, 504):
                return response
        except httpx.TransportError:
            if attempt == 7:
                raise
        time.sleep(0.25 * 2**attempt)
    return response


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DeploymentEnvironment:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.url}/api"
        self.processes: list[subprocess.Popen] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_"))}
        self.env.update(
            PREFECT_HOME=str(workdir / "prefect-home"),
            PREFECT_API_URL=self.api,
            PREFECT_UI_API_URL=self.api,  # the UI calls the API here, not at the default port
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            DO_NOT_TRACK="1",
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, worker_env: dict[str, str] | None = None) -> DeploymentEnvironment:
        self._spawn(["server", "start", "--host", "127.0.0.1", "--port", str(self.port)], "server")
        self._wait_healthy()
        self.prefect("work-pool", "create", POOL, "--type", "process", "--overwrite")
        self.prefect("--no-prompt", "deploy", "--all")
        env = {
            "DISTILFLOW_PROJECT_DIR": str(ROOT),
            "DISTILFLOW_RESULTS": str(self.workdir / "results"),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            **(worker_env or {}),
        }
        self._spawn(["worker", "start", "--pool", POOL, "--limit", "2"], "worker", env)
        return self

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def _spawn(self, args: list[str], name: str, extra_env: dict[str, str] | None = None) -> None:
        log = open(self.workdir / f"{name}.log", "w")
        self.processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "prefect", *args], cwd=ROOT, env={**self.env, **(extra_env or {})},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # its own process group
            )
        )

    def _wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.processes[0].poll() is not None:
                break
            time.sleep(0.3)
        raise RuntimeError(f"Prefect server did not start: {(self.workdir / 'server.log').read_text()[-2000:]}")

    def prefect(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "prefect", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=180
        )
        if done.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return done.stdout

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text()

    # -- the REST API --------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return call_api(method, f"{self.api}{path}", **kwargs)

    def deployment(self, name: str) -> dict[str, Any]:
        response = self.request("GET", f"/deployments/name/{name}/{name}")
        response.raise_for_status()
        return response.json()

    def create_run(self, name: str, parameters: dict[str, Any]) -> httpx.Response:
        deployment = self.deployment(name)
        return self.request("POST", f"/deployments/{deployment['id']}/create_flow_run", json={"parameters": parameters})

    def wait_for_run(self, flow_run_id: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.request("GET", f"/flow_runs/{flow_run_id}").json()
            if run["state"] and run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                return run
            time.sleep(0.5)
        raise TimeoutError(f"flow run {flow_run_id} did not finish; worker log:\n{self.log('worker')[-3000:]}")

    def latest_artifact(self, key: str) -> dict[str, Any] | None:
        response = self.request("GET", f"/artifacts/{key}/latest")
        return response.json() if response.status_code == 200 else None
