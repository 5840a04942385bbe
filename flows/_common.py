"""What the flows share: typed parameters, choosing the model endpoint, reading, writing, CLI.

Import this module before Prefect: it turns Prefect's telemetry off (no network beyond loopback)
unless the environment says otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from pydantic import BaseModel, Field  # noqa: E402

from storage import read_rows, write_rows  # noqa: E402
from tasks.errors import DistilflowUserError  # noqa: E402
from tasks.runner import RunOptions, RunResult, run_tasks  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
SIMULATED_MODEL = "distilflow-simulator"


class ModelSettings(BaseModel):
    """Which model answers, and how it is asked."""

    provider: Literal["auto", "openai", "simulator"] = Field(
        default="auto",
        description="auto: an OpenAI-compatible server when OPENAI_API_KEY or OPENAI_BASE_URL is set, "
        "else the built-in simulator; openai: always the server; simulator: always the simulator.",
    )
    model: str = Field(default="gpt-4o-mini", min_length=1, description="Model name sent to the server.")
    base_url: Union[str, None] = Field(
        default=None, description="OpenAI-compatible API root; default OPENAI_BASE_URL or OpenAI's."
    )
    temperature: Union[float, None] = Field(default=None, ge=0.0, le=2.0, description="Sampling temperature.")
    max_new_tokens: int = Field(default=256, ge=1, le=32768, description="Longest answer, in tokens.")
    max_concurrent_requests: int = Field(default=32, ge=1, le=1024, description="Requests in flight at once.")

    def uses_simulator(self) -> bool:
        if self.provider != "auto":
            return self.provider == "simulator"
        return not (self.base_url or os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"))


class RunSettings(BaseModel):
    """How the batches run."""

    batch_size: int = Field(default=8, ge=1, le=10_000, description="Rows per batch (one Prefect task run each).")
    max_concurrent_batches: int = Field(default=4, ge=1, le=256, description="Batches in flight at once.")
    retries: int = Field(default=3, ge=0, le=20, description="Prefect retries of a batch after a transient failure.")
    refresh_cache: bool = Field(default=False, description="Regenerate every batch instead of reusing cached results.")
    cache_version: str = Field(default="1", description="Bump to invalidate all cached results of this flow.")
    result_storage: Union[str, None] = Field(
        default=None, description="Where cached batch results live; default $DISTILFLOW_RESULTS or ./.distilflow/results."
    )

    def options(self, **overrides: Any) -> RunOptions:
        return RunOptions(
            max_concurrent_batches=self.max_concurrent_batches, retries=self.retries,
            refresh_cache=self.refresh_cache, cache_version=self.cache_version,
            result_storage=self.result_storage, **overrides,
        )


@contextlib.contextmanager
def model_endpoint(settings: ModelSettings, logger: Any) -> Iterator[dict[str, Any]]:
    """Keyword arguments for an OpenAI-compatible client; starts the simulator when needed."""
    if not settings.uses_simulator():
        yield {"model": settings.model, "base_url": settings.base_url}
        return
    from tasks.simulator import Simulator

    with Simulator() as sim:
        logger.warning(
            "No OPENAI_API_KEY or OPENAI_BASE_URL set: answers come from the distilflow simulator at %s "
            "(deterministic text, not a real model). Set them to use a real server.", sim.base_url,
        )
        yield {"model": SIMULATED_MODEL, "base_url": sim.base_url}


def generation_kwargs(settings: ModelSettings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"max_new_tokens": settings.max_new_tokens}
    if settings.temperature is not None:
        kwargs["temperature"] = settings.temperature
    return kwargs


def load_rows(uri: str, limit: Union[int, None] = None) -> list[dict[str, Any]]:
    rows = []
    for row in read_rows(uri):
        if limit is not None and len(rows) >= limit:
            break
        rows.append(row)
    if not rows:
        raise DistilflowUserError(f"{uri} has no rows; nothing to generate.")
    return rows


def finish(result: RunResult, output: str, logger: Any, flow_name: str, rows: Union[list, None] = None):
    """Write what succeeded, say where, and return the flow's final state."""
    from prefect.artifacts import create_markdown_artifact

    rows = result.rows if rows is None else rows
    written = write_rows(output, rows) if rows else 0
    where = output if "://" in output else str(Path(output).resolve())
    line = f"Wrote {written} rows to {where}. {result.summary_line()}"
    logger.info(line)
    print(line)
    create_markdown_artifact(
        key=f"{flow_name}-output",
        markdown=f"## Output\n\n{written} rows written to `{where}`\n\n{result.summary_line()}\n",
        description="Where this run's rows are",
    )
    return result.final_state(data={"output": where, "rows": written, "summary": result.summary_line()})


def run_steps(steps: Any, rows: list[dict[str, Any]], params: Any) -> RunResult:
    """All rows through the steps, or, with `dry_run`, three of them without the cache."""
    if params.dry_run:
        return run_tasks(steps, rows[:3], params.run.options(cache=False, artifacts=False))
    return run_tasks(steps, rows, params.run.options())


def conclude(result: RunResult, params: Any, logger: Any, flow_name: str, rows: Union[list, None] = None):
    """Print the rows of a dry run, or write the rows and report; returns the flow's final state."""
    if not params.dry_run:
        return finish(result, params.output, logger, flow_name, rows)
    from prefect.states import Completed

    for row in (rows if rows is not None else result.rows)[:3]:
        print(json.dumps(row, indent=2, ensure_ascii=False, default=str)[:2000])
    return Completed(message=f"dry run: {result.summary_line()}")


def cli(params_model: type[BaseModel], argv: Union[list[str], None] = None) -> BaseModel:
    """Flags for every parameter (`--input x`, `--model.model gpt-4o`, `--dry-run`)."""
    parser = argparse.ArgumentParser(description=params_model.__doc__)
    _add_flags(parser, params_model, prefix="")
    values: dict[str, Any] = {}
    for dotted, value in vars(parser.parse_args(argv)).items():
        if value is None:
            continue
        target = values
        *parents, leaf = dotted.split("__")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return params_model.model_validate(values)


def _add_flags(parser: argparse.ArgumentParser, model: type[BaseModel], prefix: str) -> None:
    for name, field in model.model_fields.items():
        annotation = field.annotation
        flag = f"--{prefix.replace('__', '.')}{name.replace('_', '-')}"
        dest = f"{prefix}{name}"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            _add_flags(parser, annotation, prefix=f"{dest}__")
            continue
        args = [a for a in get_args(annotation) if a is not type(None)]
        base = args[0] if get_origin(annotation) is Union and len(args) == 1 else annotation
        help_text = f"{field.description or ''} (default: {field.default})"
        if base is bool:
            parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif base in (int, float, str):
            parser.add_argument(flag, dest=dest, type=base, default=None, help=help_text)
        elif get_origin(base) is Literal:
            parser.add_argument(flag, dest=dest, choices=get_args(base), default=None, help=help_text)
        else:  # lists and other structures: JSON
            parser.add_argument(flag, dest=dest, type=json.loads, default=None, help=f"{help_text}; JSON")
