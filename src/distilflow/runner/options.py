"""Settings of a run: concurrency, retries, caching, reporting."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveInt

__all__ = ["RunOptions", "default_result_storage"]


def default_result_storage() -> str:
    """`$DISTILFLOW_HOME/results` (default `~/.distilflow/results`): the user's, whatever the working directory."""
    from distilflow.local_server import home

    return str(home() / "results")


class RunOptions(BaseModel):
    """How `run_tasks` runs a chain of tasks as Prefect task runs."""

    model_config = ConfigDict(extra="forbid")

    max_concurrent_batches: Union[PositiveInt, None] = Field(
        default=None,
        description="Most first-step batches in flight at once; default: as many as keep the model's request "
        "slots busy (requests set the pace), within max_rows_in_flight.",
    )
    max_rows_in_flight: PositiveInt = Field(
        default=10_000, description="Most rows held in batches that have started and not finished (memory)."
    )
    retries: NonNegativeInt = Field(default=3, description="Prefect retries of a batch after a transient failure.")
    retry_delay_seconds: NonNegativeFloat = Field(default=2.0, description="First batch retry delay, doubled each time.")
    retry_jitter_factor: NonNegativeFloat = Field(default=0.5, description="Random spread of the retry delays.")
    cache: bool = Field(
        default=True, description="Keep every model answer in the answer cache and answer repeated requests from it."
    )
    refresh_cache: bool = Field(default=False, description="Ask the model again for every request, replacing cached answers.")
    cache_version: str = Field(default="1", description="Bump to stop using every answer cached so far.")
    result_storage: Union[str, None] = Field(
        default=None,
        description="Where cached answers live (a directory or fsspec URI such as s3://bucket/prefix); "
        "default $DISTILFLOW_RESULTS or $DISTILFLOW_HOME/results (~/.distilflow/results).",
    )
    concurrency_limit: Union[str, None] = Field(
        default=None,
        description="Name of a Prefect global concurrency limit each running batch holds one slot of, "
        "capping batches in flight across every worker (e.g. one limit per model: "
        "`prefect gcl create gpt-4o --limit 8`). Off by default.",
    )
    rate_limit: Union[str, None] = Field(
        default=None,
        description="Name of a Prefect global concurrency limit with slot decay that paces requests across every "
        "worker: before a batch sends, it takes one slot per request (cache hits take none). One per model, e.g. "
        "`prefect gcl create gpt-4o-rpm --limit 500 --slot-decay-per-second 8.33` for 500 requests a minute. "
        "Off by default.",
    )
    fail_fast: bool = Field(
        default=True,
        description="After a batch fails with a non-transient error (a bug, a storage failure), start no new batches.",
    )
    max_failed_fraction: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="Stop the run when more than this share of a step's rows failed (judged from 20 rows on); "
        "1 never stops. Rows fail alone when the server refuses their request (e.g. HTTP 400 context length).",
    )
    max_fallback_share: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="End the run as one with failed rows (exit 3, the dataset still written) when more than this "
        "share of a step's generations kept the raw output because it could not be parsed (judged from 20 "
        "generations on); 1 never does.",
    )
    progress: Union[bool, None] = Field(default=None, description="Show a progress bar; default: when on a terminal.")
    artifacts: bool = Field(default=True, description="Create summary, fallback and progress artifacts.")
    artifact_prefix: Union[str, None] = Field(default=None, description="Artifact key prefix; default: the flow name.")
    max_fallback_rows_shown: PositiveInt = Field(
        default=50, description="Rows in the fallback and failed-rows artifacts at most."
    )

    def resolved_result_storage(self) -> str:
        location = self.result_storage or os.environ.get("DISTILFLOW_RESULTS") or default_result_storage()
        if "://" not in location:
            location = str(Path(location).expanduser().resolve())
        return location
