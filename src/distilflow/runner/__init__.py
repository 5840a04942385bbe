"""Tasks on Prefect: each batch of each step is a task run with retries and result caching.

    from prefect import flow
    from distilflow.runner import run_tasks

    @flow
    def generate(rows):
        result = run_tasks([TextGeneration(llm=...), UltraFeedback(llm=...)], rows)
        return result.final_state(data=result.rows)
"""

import os

# Prefect's telemetry stays off (no network beyond loopback) unless the environment says otherwise;
# set before Prefect is first imported, which importing the runner does.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from distilflow.runner.batch import FAILED_ROWS_STATE_NAME, FALLBACK_STATE_NAME  # noqa: E402
from distilflow.runner.options import RunOptions  # noqa: E402
from distilflow.runner.pipeline import run_tasks  # noqa: E402
from distilflow.runner.report import StepSummary  # noqa: E402
from distilflow.runner.result import RunResult  # noqa: E402

__all__ = ["FAILED_ROWS_STATE_NAME", "FALLBACK_STATE_NAME", "RunOptions", "RunResult", "StepSummary", "run_tasks"]
