"""Function-calling data, APIGen style: queries with their calls, each call executed and judged, only verified rows kept.

    functions >> APIGenGenerator >> APIGenExecutionChecker >> APIGenSemanticChecker >> KeepPassingRows

For each function (name, description, JSON tool schema, a few example queries with their calls)
a model writes a query and the calls that answer it; every call is run against the real Python
function (flows/data/apigen_functions.py by default; nothing else is ever run); a judge decides
whether the calls and their results do what the query asks; rows that passed both checks are
written (https://arxiv.org/abs/2406.18518; distilabel's APIGen pipeline).

    python flows/apigen.py
    python flows/apigen.py --input my_functions.jsonl --functions my_functions.py --output out/apigen.parquet
"""

from __future__ import annotations

import contextlib
from typing import Union

from distilflow.flows._common import (  # noqa: I001 - first: sets Prefect's environment before Prefect loads
    BATCH_THREADS, DATA, HubPublishing, ModelSettings, RunSettings, flow_body, load_rows, main, model_endpoint, openai_llm,
    project_path,
)
from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field, PositiveInt

from distilflow.steps.tasks.apigen.generator import APIGenGenerator
from distilflow.steps.tasks.apigen.semantic_checker import APIGenSemanticChecker
from distilflow.pipeline import Pipeline
from distilflow.runner.to_dataset import run_pipeline_to_dataset
from distilflow.steps.tasks.apigen import APIGenExecutionChecker
from distilflow.steps.filtering import KeepPassingRows
from distilflow.steps.generators import LoadDataFromDicts

#: the checks a row must pass to be written
CHECKS = ["keep_row_after_execution_check", "keep_row_after_semantic_check"]


class APIGenParams(HubPublishing):
    """Generate function-calling data: a query and its calls per function, executed and judged; only verified rows are kept."""

    input: str = Field(
        default=str(DATA / "apigen_functions.jsonl"),
        description="JSONL or Parquet file of functions: `func_name`, `func_desc`, `tools` (JSON tool schemas) and "
        "`examples` (example queries with their calls).",
    )
    functions: str = Field(
        default=str(DATA / "apigen_functions.py"),
        description="The Python file defining the functions (or a folder of <name>.py files); generated calls run "
        "only these.",
    )
    output: str = Field(default="output/apigen.jsonl", description="Where the verified rows go (.jsonl or .parquet).")
    limit: Union[int, None] = Field(default=None, ge=1, description="Use only the first N functions.")
    number: list[PositiveInt] = Field(
        default=[1, 2], min_length=1,
        description="How many requests a query combines (one call each), chosen per function from this list.",
    )
    timeout: float = Field(default=5.0, gt=0, le=600, description="Seconds a function call may run before it fails.")
    check_is_dangerous: bool = Field(
        default=True, description="Refuse to run functions whose source starts processes, exits or evaluates code."
    )
    generator: ModelSettings = Field(
        default_factory=lambda: ModelSettings(temperature=0.7, max_new_tokens=1024),
        description="The model that writes the queries and calls (asked for JSON: structured output).",
    )
    judge: ModelSettings = Field(
        default_factory=lambda: ModelSettings(temperature=0.0),
        description="The model that judges whether the calls answer the query (asked for JSON: structured output).",
    )
    run: RunSettings = Field(default_factory=RunSettings)
    dry_run: bool = Field(default=False, description="Run one small batch without the cache and print the rows.")


@flow(name="apigen", task_runner=ThreadPoolTaskRunner(max_workers=BATCH_THREADS))
def apigen(params: APIGenParams = APIGenParams()):  # noqa: B008 - the default is the form Prefect shows
    return flow_body(_apigen, params)


def _apigen(params: APIGenParams, logger):
    rows = load_rows(params.input, params.limit)
    with contextlib.ExitStack() as stack:
        generator_endpoint = stack.enter_context(model_endpoint(params.generator, logger))
        judge_endpoint = stack.enter_context(model_endpoint(params.judge, logger))
        with Pipeline(name="apigen", description=APIGenParams.__doc__) as pipeline:
            load = LoadDataFromDicts(name="load_functions", data=rows, batch_size=params.run.rows_per_batch(len(rows)))
            generate = APIGenGenerator(
                name="generate",
                llm=openai_llm(params.generator, generator_endpoint),
                number=params.number[0] if len(params.number) == 1 else params.number,
                use_default_structured_output=True,
                output_mappings={"model_name": "generator_model"},
            )
            execute = APIGenExecutionChecker(
                name="execute", libpath=project_path(params.functions), timeout=params.timeout,
                check_is_dangerous=params.check_is_dangerous,
            )
            judge = APIGenSemanticChecker(
                name="judge",
                llm=openai_llm(params.judge, judge_endpoint),
                use_default_structured_output=True,
                output_mappings={"model_name": "judge_model"},
            )
            keep = KeepPassingRows(name="keep", columns=CHECKS)
            load >> generate >> execute >> judge >> keep
        return run_pipeline_to_dataset(pipeline, {"keep": params.output}, params.run.options(), logger,
                                       dry_run=params.dry_run, push_to_hub=params.push_to_hub, private=params.private)


if __name__ == "__main__":
    main(apigen, APIGenParams)
