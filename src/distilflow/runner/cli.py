"""The command line of flows and pipeline scripts: flags from typed parameters, a run, an exit status.

`cli(Model)` turns a pydantic model of parameters into flags (`--input x`, `--model.model gpt-4o`,
`--run.batch-size 500`, `--dry-run`); `main(flow, Model)` parses them, makes sure a Prefect API
is there (the kept local server, see `local_server.py`), runs the flow and exits with its outcome.
`RunSettings` are the `--run.*` flags every run has.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from typing import Any, Literal, NoReturn, Union, get_args, get_origin

from pydantic import BaseModel, Field, ValidationError

from distilflow.errors import DistilflowUserError, ModelServerUnavailableError
from distilflow.runner.options import RunOptions
from distilflow.runner.stopping import EXIT_LOST_SERVER, EXIT_SIGINT, EXIT_SIGTERM, supervised

__all__ = [
    "EXIT_BAD_INPUT", "EXIT_COMPLETE", "EXIT_FAILED", "EXIT_FAILED_ROWS", "EXIT_LOST_SERVER", "EXIT_SIGINT",
    "EXIT_SIGTERM", "HubPublishing", "RunSettings", "cli", "main",
]


class HubPublishing(BaseModel):
    """Pushing a run's dataset to the Hugging Face Hub (or the Hub at `HF_ENDPOINT`), with its card."""

    push_to_hub: Union[str, None] = Field(
        default=None, description="Also push the dataset to this Hub dataset repo (org/name) once it is written; "
        "the token from HF_TOKEN or the huggingface_hub login.",
    )
    private: bool = Field(default=False, description="Make the Hub repo private (with --push-to-hub).")


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
        "or $DISTILFLOW_HOME/results (~/.distilflow/results)."
    )
    max_failed_fraction: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="Stop when more than this share of a step's rows failed (e.g. HTTP 400); 1 never stops.",
    )
    max_fallback_share: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="Exit 3 (failed rows; the dataset is still written) when more than this share of a step's "
        "generations kept raw output it could not parse (judged from 20 on); 1 never does.",
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
            max_fallback_share=self.max_fallback_share,
            rate_limit=self.rate_limit, concurrency_limit=self.concurrency_limit, **overrides,
        )


#: Exit statuses of `python flows/<name>.py` (the README lists them).
EXIT_COMPLETE, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_FAILED_ROWS = 0, 1, 2, 3


def main(run_flow: Callable[..., Any], params_model: type[BaseModel], argv: Union[list[str], None] = None) -> NoReturn:
    """`python flows/<name>.py`: parse the flags, run the flow, exit with its outcome.

    0: the dataset is complete (fallback rows included); 3: it was written, but some rows failed
    (their errors are in the rows; running again retries only them); 2: bad input or
    configuration, with one line naming the fix; 1: the run failed and wrote nothing; 4: a server
    the run needs (the Prefect API, the model server) went away, every answer received is kept;
    130/143: Ctrl-C / SIGTERM ended it, answers kept. A run that did not complete ends with its
    reason as the last line on stderr.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY

    from distilflow.local_server import prefect_api_for_a_run
    from distilflow.runner import FAILED_ROWS_STATE_NAME

    params = cli(params_model, argv)  # bad flags end here, before any server starts
    # A line per batch ("Finished in state Completed()") says nothing the progress bar, the batch
    # states and the summary do not, and at thousands of batches it costs the run and its server
    # a log record each. Warnings and errors (retries, failures) still show.
    logging.getLogger("prefect.task_runs").setLevel(logging.WARNING)
    # Heartbeats tell a worker's server that a run still lives; a run started here ends with this
    # process, and their thread costs a second at exit (it sleeps in one-second steps).
    with prefect_api_for_a_run({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        with supervised(PREFECT_API_URL.value()):  # SIGTERM ends it as Ctrl-C does; a lost API is named
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
    if isinstance(error, ModelServerUnavailableError):
        sys.exit(EXIT_LOST_SERVER)
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
    *sections, leaf = [str(part) for part in error["loc"] if isinstance(part, str)] or [""]
    flag = "--" + ".".join([*sections, leaf.replace("_", "-")])  # as _add_flags spells it
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
