"""What the flows share: typed parameters, choosing the model endpoint, reading, writing, CLI.

Import this module before Prefect: it turns Prefect's telemetry off (no network beyond loopback)
unless the environment says otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, NoReturn, Union, get_args, get_origin

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from pydantic import BaseModel, Field, SecretStr, ValidationError  # noqa: E402

from distilflow.storage import DatasetWriter, check_readable, check_writable, read_rows  # noqa: E402
from distilflow.tasks.errors import BatchesFailedError, DistilflowUserError  # noqa: E402
from distilflow.tasks.runner import RunOptions, RunResult, run_tasks  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("flows/data")  # relative, so deployments show a path that holds on any worker
SIMULATED_MODEL = "distilflow-simulator"
# Threads for batch task runs: a running batch mostly waits for its answers, and requests set the
# pace (a batch held by one slow answer leaves its slots to the next), so many may run at once.
BATCH_THREADS = 256


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

    def client_settings(self) -> dict[str, Any]:
        """How the client behaves towards the server (not what it asks): for the client's constructor."""
        return {"max_concurrent_requests": self.max_concurrent_requests, "timeout": self.timeout,
                "max_retries": self.max_retries}



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


class RunSettings(BaseModel):
    """How the batches run."""

    # Larger than distilabel's input_batch_size of 50: each batch is a Prefect task run, which costs
    # the run and its server milliseconds of work whatever it holds (a re-run answered from the
    # cache takes about half as long at 200 rows a batch as at 50). Answers are cached one by one,
    # so a crash costs the same either way, and requests, not batches, set the pace.
    batch_size: Union[int, None] = Field(
        default=None, ge=1, le=10_000,
        description="Rows per batch (one Prefect task run each); default: 200, or more for a large input so a step "
        "has about 100 batches (at most 1,000 rows each).",
    )
    max_concurrent_batches: Union[int, None] = Field(
        default=None, ge=1, le=4096,
        description="Most batches in flight at once; default: as many as keep the model's request slots busy.",
    )
    max_rows_in_flight: int = Field(
        default=10_000, ge=1, description="Most rows held in batches that have started and not finished."
    )
    retries: int = Field(default=3, ge=0, le=20, description="Prefect retries of a batch after a transient failure.")
    refresh_cache: bool = Field(default=False, description="Ask the model again for every row, replacing cached answers.")
    cache_version: str = Field(default="1", description="Bump to stop using every answer cached so far.")
    result_storage: Union[str, None] = Field(
        default=None, description="Where cached answers live (a directory or s3:// URI); default $DISTILFLOW_RESULTS "
        "or ./.distilflow/results."
    )
    max_failed_fraction: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="Stop when more than this share of a step's rows failed (e.g. HTTP 400); 1 never stops.",
    )
    rate_limit: Union[str, None] = Field(
        default=None, description="A Prefect global concurrency limit with slot decay that paces requests across "
        "every worker and run (`prefect gcl create NAME --limit 500 --slot-decay-per-second 8.33`: 500 a minute).",
    )
    concurrency_limit: Union[str, None] = Field(
        default=None, description="A Prefect global concurrency limit capping batches in flight across every worker."
    )

    def rows_per_batch(self, rows: int) -> int:
        """`batch_size`, or by default 200 rows a batch, more when that would make over 100 batches."""
        if self.batch_size is not None:
            return self.batch_size
        return min(1_000, max(200, -(-rows // 10_000) * 100))  # rows / 100, rounded up to a hundred

    def options(self, **overrides: Any) -> RunOptions:
        return RunOptions(
            max_concurrent_batches=self.max_concurrent_batches, max_rows_in_flight=self.max_rows_in_flight,
            retries=self.retries,
            refresh_cache=self.refresh_cache, cache_version=self.cache_version,
            result_storage=self.result_storage, max_failed_fraction=self.max_failed_fraction,
            rate_limit=self.rate_limit, concurrency_limit=self.concurrency_limit, **overrides,
        )


@contextlib.contextmanager
def model_endpoint(settings: ModelSettings, logger: Any) -> Iterator[dict[str, Any]]:
    """Keyword arguments for an OpenAI-compatible client; starts the simulator when needed."""
    # each lookup may be a Prefect API call: made once
    base_url = None if settings.provider == "simulator" else settings.base_url or _configured_base_url()
    key = None if settings.provider == "simulator" else _configured_api_key()
    if settings.provider == "openai" or (settings.provider == "auto" and (base_url or key)):
        yield {"model": settings.model, "base_url": base_url, **({"api_key": SecretStr(key)} if key else {})}
        return
    from distilflow.tasks.simulator import Simulator

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


def project_path(uri: str) -> str:
    """A relative path that does not exist here but does in this checkout (the example data)."""
    if "://" in uri or Path(uri).is_absolute() or Path(uri).exists() or not (ROOT / uri).exists():
        return uri
    return str(ROOT / uri)


def load_rows(uri: str, limit: Union[int, None] = None) -> list[dict[str, Any]]:
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
    return rows


def user_error_state(error: DistilflowUserError):
    """How a flow ends on bad input or configuration: Failed, with the message and nothing else.

    Raising instead would have Prefect log the whole traceback first, burying the one line that
    says what to fix. Python callers still get the error raised by `state.result()` (or by calling
    the flow without `return_state`), and a deployment's run is Failed with the message.
    """
    from prefect.states import Failed

    return Failed(message=str(error), data=error)


def run_steps(
    steps: Any,
    rows: list[dict[str, Any]],
    params: Any,
    logger: Any,
    flow_name: str,
    transform: Union[Callable[[list[dict[str, Any]]], list[dict[str, Any]]], None] = None,
):
    """Run the steps and stream each finished batch to `params.output`; return the final state.

    The output location is checked before any request. Batches are written as they finish and
    the dataset appears at `params.output` only when the run completed (rows that failed alone
    included, with their errors); a run that stopped leaves what was there before. With
    `dry_run`, three rows run without the cache and are printed instead.
    """
    from prefect.states import Completed

    if params.dry_run:
        result = run_tasks(steps, rows[:3], params.run.options(cache=False, artifacts=False))
        shown = transform(result.rows) if transform else result.rows
        for row in shown:
            print(json.dumps(row, indent=2, ensure_ascii=False, default=str)[:2000])
        return Completed(message=f"dry run: {result.summary_line()}")
    check_writable(params.output)
    with DatasetWriter(params.output) as writer:
        sink = writer if transform is None else _Transformed(writer, transform)
        result = run_tasks(steps, rows, params.run.options(), sink=sink, keep_rows=False)
        if not result.complete:
            return _not_published(result, params.output)
        written = writer.commit()
    return _report(result, params.output, written, logger, flow_name)


def _not_published(result: RunResult, output: str):
    """The run's failed state, saying that the output was left as it was."""
    from prefect.states import Failed

    state = result.final_state()
    error = state.result(raise_on_failure=False)
    message = f"{state.message} Nothing was written: {output} is as it was before the run."
    if isinstance(error, BatchesFailedError):
        error = BatchesFailedError(message)
    return Failed(message=message, data=error)


class _Transformed:
    def __init__(self, writer: Any, transform: Callable) -> None:
        self.writer, self.transform = writer, transform

    def write_part(self, index: int, rows: list[dict[str, Any]]) -> None:
        self.writer.write_part(index, self.transform(rows))


def _report(result: RunResult, output: str, written: int, logger: Any, flow_name: str):
    from prefect.artifacts import create_markdown_artifact

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


#: Exit statuses of `python flows/<name>.py` (the README lists them).
EXIT_COMPLETE, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_FAILED_ROWS = 0, 1, 2, 3


def main(run_flow: Callable[..., Any], params_model: type[BaseModel], argv: Union[list[str], None] = None) -> NoReturn:
    """`python flows/<name>.py`: parse the flags, run the flow, exit with its outcome.

    0: the dataset is complete (fallback rows included); 3: it was written, but some rows failed
    (their errors are in the rows; running again retries only them); 2: bad input or
    configuration, with one line naming the fix; 1: the run failed and wrote nothing. A run that
    did not complete ends with its reason as the last line on stderr.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from distilflow.flows.local_server import ensure_local_server
    from distilflow.tasks.runner import FAILED_ROWS_STATE_NAME

    params = cli(params_model, argv)  # bad flags end here, before any server starts
    # Heartbeats tell a worker's server that a run still lives; a run started here ends with this
    # process, and their thread costs a second at exit (it sleeps in one-second steps).
    settings = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    # A line per batch ("Finished in state Completed()") says nothing the progress bar, the batch
    # states and the summary do not, and at thousands of batches it costs the run and its server
    # a log record each. Warnings and errors (retries, failures) still show.
    logging.getLogger("prefect.task_runs").setLevel(logging.WARNING)
    url = ensure_local_server()
    if url:
        settings[PREFECT_API_URL] = url
    with temporary_settings(updates=settings):
        state = run_flow(params, return_state=True)
    if state.is_completed():
        if state.name == FAILED_ROWS_STATE_NAME:
            print(f"warning: {state.message}", file=sys.stderr)
            sys.exit(EXIT_FAILED_ROWS)
        sys.exit(EXIT_COMPLETE)
    try:
        error = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - a result that cannot be read: not a user error
        error = None
    print(f"error: {state.message}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT if isinstance(error, DistilflowUserError) else EXIT_FAILED)


def cli(params_model: type[BaseModel], argv: Union[list[str], None] = None) -> BaseModel:
    """Flags for every parameter (`--input x`, `--model.model gpt-4o`, `--dry-run`).

    A value the parameters refuse (`--num-generations 0`) exits with status 2 and one line naming
    the flag, like argparse's own errors, instead of a pydantic traceback.
    """
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
    try:
        return params_model.model_validate(values)
    except ValidationError as e:
        problems = "; ".join(_flag_problem(error) for error in e.errors())
        parser.exit(2, f"{parser.prog}: error: {problems}. `--help` lists every flag and its range.\n")


def _flag_problem(error: Any) -> str:
    flag = "--" + ".".join(str(part).replace("_", "-") for part in error["loc"] if isinstance(part, str))
    given = f" {error['input']}" if not isinstance(error.get("input"), dict) else ""
    return f"{flag}{given}: {error['msg']}"


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
