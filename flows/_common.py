"""What the flows share: typed parameters, choosing the model endpoint, reading the input.

Import this module before Prefect: it turns Prefect's telemetry off (no network beyond loopback)
unless the environment says otherwise.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Union

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from pydantic import BaseModel, Field, SecretStr  # noqa: E402

from distilflow.storage import check_readable, read_rows  # noqa: E402
from distilflow.errors import DistilflowUserError  # noqa: E402
# the command line and the run-to-a-dataset logic every pipeline uses, re-exported for the flows
from distilflow.runner.cli import (  # noqa: E402, F401
    EXIT_BAD_INPUT, EXIT_COMPLETE, EXIT_FAILED, EXIT_FAILED_ROWS, HubPublishing, RunSettings, cli, main,
)
from distilflow.runner.graph import BATCH_THREADS  # noqa: E402, F401
from distilflow.runner.to_dataset import run_steps, user_error_state  # noqa: E402, F401

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("flows/data")  # relative, so deployments show a path that holds on any worker
SIMULATED_MODEL = "distilflow-simulator"


class ModelSettings(BaseModel):
    """Which model answers, and how it is asked."""

    provider: Literal["auto", "openai", "simulator"] = Field(
        default="auto",
        description="auto: an OpenAI-compatible server when a key or base URL is configured (OPENAI_API_KEY / "
        "OPENAI_BASE_URL, or the Prefect Secret block 'distilflow-openai-api-key' / Variable "
        "'distilflow_openai_base_url'), else the built-in simulator; openai: always the server; "
        "simulator: always the simulator.",
    )
    model: str = Field(default="gpt-4o-mini", min_length=1, description="Model name sent to the server.")
    base_url: Union[str, None] = Field(
        default=None, description="OpenAI-compatible API root; default OPENAI_BASE_URL or OpenAI's."
    )
    temperature: Union[float, None] = Field(default=None, ge=0.0, le=2.0, description="Sampling temperature.")
    max_new_tokens: int = Field(default=256, ge=1, le=32768, description="Longest answer, in tokens.")
    # A high ceiling is safe: the client lowers it on 429/503 answers and honours Retry-After.
    max_concurrent_requests: int = Field(
        default=128, ge=1, le=1024, description="Most requests in flight at once (lowered while the server answers 429)."
    )
    timeout: float = Field(default=120.0, gt=0, le=3600, description="Seconds before a request is abandoned and retried.")
    max_retries: int = Field(default=6, ge=0, le=50, description="Retries of a request after a transient failure.")
    max_outage_seconds: float = Field(
        default=300.0, gt=0, le=86400,
        description="While the server cannot be reached at all, requests wait for it; after this long without an "
        "answer the run stops (exit 4), keeping every answer.",
    )

    def client_settings(self) -> dict[str, Any]:
        """How the client behaves towards the server (not what it asks): for the client's constructor."""
        return {"max_concurrent_requests": self.max_concurrent_requests, "timeout": self.timeout,
                "max_retries": self.max_retries, "max_outage_seconds": self.max_outage_seconds}



# Where a deployed flow finds its model server when neither the parameters nor the worker's
# environment say: Prefect objects an operator sets once in the UI or CLI (never prefect.yaml).
API_KEY_BLOCK = "distilflow-openai-api-key"  # a Secret block
BASE_URL_VARIABLE = "distilflow_openai_base_url"  # a Variable


def _configured_api_key() -> Union[str, None]:
    if os.environ.get("OPENAI_API_KEY"):
        return os.environ["OPENAI_API_KEY"]
    try:
        from prefect.blocks.system import Secret

        return Secret.load(API_KEY_BLOCK).get()
    except Exception:  # noqa: BLE001 - no such block, or no Prefect API: not configured
        return None


def _configured_base_url() -> Union[str, None]:
    if os.environ.get("OPENAI_BASE_URL"):
        return os.environ["OPENAI_BASE_URL"]
    try:
        from prefect.variables import Variable

        return Variable.get(BASE_URL_VARIABLE, default=None)
    except Exception:  # noqa: BLE001 - no Prefect API: not configured
        return None


@contextlib.contextmanager
def model_endpoint(settings: ModelSettings, logger: Any) -> Iterator[dict[str, Any]]:
    """Keyword arguments for an OpenAI-compatible client; starts the simulator when needed."""
    # each lookup may be a Prefect API call: made once
    base_url = None if settings.provider == "simulator" else settings.base_url or _configured_base_url()
    key = None if settings.provider == "simulator" else _configured_api_key()
    if settings.provider == "openai" or (settings.provider == "auto" and (base_url or key)):
        yield {"model": settings.model, "base_url": base_url, **({"api_key": SecretStr(key)} if key else {})}
        return
    with _simulator(logger) as sim:
        yield {"model": SIMULATED_MODEL, "base_url": sim.base_url}


# A flow with two models (a generator and a judge) asks for a simulator twice: one serves both,
# and the run says so once.
_simulators: list[Any] = []


@contextlib.contextmanager
def _simulator(logger: Any) -> Iterator[Any]:
    if _simulators:
        _simulators.append(_simulators[0])
        try:
            yield _simulators[0]
        finally:
            _simulators.pop()
        return
    from distilflow.simulator import Simulator

    with Simulator() as sim:
        logger.warning(
            "No OPENAI_API_KEY or OPENAI_BASE_URL set: answers come from the distilflow simulator at %s "
            "(deterministic text, not a real model). Set them to use a real server.", sim.base_url,
        )
        _simulators.append(sim)
        try:
            yield sim
        finally:
            _simulators.pop()


def flow_body(body: Callable[[Any, Any], Any], params: BaseModel) -> Any:
    """What a flow returns: `body(params, logger)`, or a Failed state naming the fix on bad input."""
    from prefect import get_run_logger

    try:
        return body(params, get_run_logger())
    except DistilflowUserError as e:
        return user_error_state(e)


def openai_llm(settings: ModelSettings, endpoint: dict[str, Any]) -> Any:
    """The OpenAI-compatible client `settings` describe, at `endpoint` (from `model_endpoint`)."""
    from distilflow.models import OpenAILLM

    return OpenAILLM(**endpoint, generation_kwargs=generation_kwargs(settings), **settings.client_settings())


def generation_kwargs(settings: ModelSettings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"max_new_tokens": settings.max_new_tokens}
    if settings.temperature is not None:
        kwargs["temperature"] = settings.temperature
    return kwargs


def project_path(uri: str) -> str:
    """A relative path that does not exist here but does in this checkout (the example data)."""
    if "://" in uri or Path(uri).is_absolute() or Path(uri).exists() or not (ROOT / uri).exists():
        return uri
    return str(ROOT / uri)


def load_rows(
    uri: str, limit: Union[int, None] = None, needs: Sequence[str] = (), fix: Union[str, None] = None,
) -> list[dict[str, Any]]:
    """The first `limit` rows of `uri`, each with the columns the flow `needs`, or an error naming
    the row and `fix` (a flow's flags that fix it; `{column}` is the row's first column)."""
    uri = project_path(uri)
    check_readable(uri)
    rows = []
    for row in read_rows(uri):
        if limit is not None and len(rows) >= limit:
            break
        rows.append(row)
    if not rows:
        raise DistilflowUserError(
            f"{uri} has no rows; nothing to generate. Add rows to it, or point `input` (--input) at another dataset."
        )
    for index, row in enumerate(rows):
        missing = [column for column in needs if column not in row]
        if missing:
            columns = sorted(row)
            how = fix.format(column=columns[0]) if fix and columns else f"Rename the column(s) in {uri}."
            raise DistilflowUserError(
                f"{uri}: row {index} has no column(s) {missing}, only {columns}. {how}"
            )
    return rows


