"""The main job: instructions -> TextGeneration -> rows.

    python flows/text_generation.py                      # the example instructions, simulator if no key
    python flows/text_generation.py --input my.parquet --output out/rows.jsonl --num-generations 2
    python flows/text_generation.py --dry-run            # one small batch, no cache, rows printed
"""

from __future__ import annotations

from typing import Union

from distilflow.flows._common import (  # noqa: I001 - first: sets Prefect's environment before Prefect loads
    BATCH_THREADS, DATA, HubPublishing, ModelSettings, RunSettings, flow_body, load_rows, main, model_endpoint, openai_llm,
    run_steps,
)
from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from distilflow.steps.tasks import TextGeneration


class TextGenerationParams(HubPublishing):
    """Generate answers for a file of instructions."""

    input: str = Field(default=str(DATA / "instructions.jsonl"), description="JSONL or Parquet file with the instructions.")
    output: str = Field(default="output/text_generation.jsonl", description="Where the rows go (.jsonl or .parquet).")
    limit: Union[int, None] = Field(default=None, ge=1, description="Use only the first N input rows.")
    model: ModelSettings = Field(default_factory=ModelSettings)
    system_prompt: Union[str, None] = Field(default=None, description="System prompt for every request.")
    template: str = Field(default="{{ instruction }}", description="jinja2 template of the user message.")
    columns: list[str] = Field(default=["instruction"], min_length=1, description="Input columns the template uses.")
    num_generations: int = Field(default=1, ge=1, le=16, description="Answers per instruction.")
    group_generations: bool = Field(default=False, description="One row per instruction with a list of answers.")
    run: RunSettings = Field(default_factory=RunSettings)
    dry_run: bool = Field(default=False, description="Run one small batch without the cache and print the rows.")


@flow(name="text-generation", task_runner=ThreadPoolTaskRunner(max_workers=BATCH_THREADS))
def text_generation(params: TextGenerationParams = TextGenerationParams()):
    return flow_body(_text_generation, params)


def _text_generation(params: TextGenerationParams, logger):
    rows = load_rows(
        params.input, params.limit, needs=params.columns,
        fix="Name your column in the prompt: --template '{{{{ {column} }}}}' --columns '[\"{column}\"]'.",
    )
    with model_endpoint(params.model, logger) as endpoint:
        task = TextGeneration(
            llm=openai_llm(params.model, endpoint), system_prompt=params.system_prompt, template=params.template, columns=params.columns,
            num_generations=params.num_generations, group_generations=params.group_generations,
            input_batch_size=params.run.rows_per_batch(len(rows)),
        )
        return run_steps(task, rows, params, logger, "text-generation")


if __name__ == "__main__":
    main(text_generation, TextGenerationParams)
