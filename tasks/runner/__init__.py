"""Tasks on Prefect: each batch of each step is a task run with retries and result caching.

    from prefect import flow
    from distilflow.tasks.runner import run_tasks

    @flow
    def generate(rows):
        result = run_tasks([TextGeneration(llm=...), UltraFeedback(llm=...)], rows)
        return result.final_state(data=result.rows)
"""

from distilflow.tasks.runner.batch import FAILED_ROWS_STATE_NAME, FALLBACK_STATE_NAME
from distilflow.tasks.runner.options import RunOptions
from distilflow.tasks.runner.pipeline import run_tasks
from distilflow.tasks.runner.report import StepSummary
from distilflow.tasks.runner.result import RunResult

__all__ = ["FAILED_ROWS_STATE_NAME", "FALLBACK_STATE_NAME", "RunOptions", "RunResult", "StepSummary", "run_tasks"]
