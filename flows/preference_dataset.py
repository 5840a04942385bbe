"""Preference data: instruction -> TextGeneration (n answers, grouped) -> UltraFeedback ratings.

    python flows/preference_dataset.py
    python flows/preference_dataset.py --num-generations 3 --aspect helpfulness --output out/prefs.parquet
"""

from __future__ import annotations

from typing import Literal, Union

from distilflow.flows._common import (  # noqa: I001 - first: sets Prefect's environment before Prefect loads
    BATCH_THREADS, DATA, ModelSettings, RunSettings, generation_kwargs, load_rows, main, model_endpoint, run_steps,
    user_error_state,
)
from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from distilflow.tasks import DistilflowUserError, TextGeneration, UltraFeedback
from distilflow.tasks.models import OpenAILLM


class PreferenceDatasetParams(BaseModel):
    """Answer each instruction several times and have a judge rate the answers."""

    input: str = Field(default=str(DATA / "instructions.jsonl"), description="JSONL or Parquet file with an `instruction` column.")
    output: str = Field(default="output/preference_dataset.jsonl", description="Where the rated rows go.")
    limit: Union[int, None] = Field(default=None, ge=1, description="Use only the first N input rows.")
    generator: ModelSettings = Field(default_factory=ModelSettings, description="The model that answers.")
    judge: ModelSettings = Field(default_factory=ModelSettings, description="The model that rates the answers.")
    num_generations: int = Field(default=2, ge=2, le=8, description="Answers per instruction to compare.")
    aspect: Literal["overall-rating", "helpfulness", "honesty", "instruction-following", "truthfulness"] = Field(
        default="overall-rating", description="What the judge rates."
    )
    run: RunSettings = Field(default_factory=RunSettings)
    dry_run: bool = Field(default=False, description="Run one small batch without the cache and print the rows.")


@flow(name="preference-dataset", task_runner=ThreadPoolTaskRunner(max_workers=BATCH_THREADS))
def preference_dataset(params: PreferenceDatasetParams = PreferenceDatasetParams()):
    try:
        return _preference_dataset(params, get_run_logger())
    except DistilflowUserError as e:
        return user_error_state(e)


def _preference_dataset(params: PreferenceDatasetParams, logger):
    rows = load_rows(params.input, params.limit)
    with model_endpoint(params.generator, logger) as gen_endpoint, model_endpoint(params.judge, logger) as judge_endpoint:
        generate = TextGeneration(
            name="generate",
            llm=OpenAILLM(**gen_endpoint, generation_kwargs=generation_kwargs(params.generator),
                          **params.generator.client_settings()),
            num_generations=params.num_generations, group_generations=True,
            input_batch_size=params.run.rows_per_batch(len(rows)),
            output_mappings={"model_name": "generation_model"},
        )
        judge = UltraFeedback(
            name="judge",
            llm=OpenAILLM(**judge_endpoint, generation_kwargs=generation_kwargs(params.judge),
                          **params.judge.client_settings()),
            aspect=params.aspect,
            # ask for UltraFeedback's JSON (narrowed to the row's generations) rather than its text format
            use_default_structured_output=True,
            input_mappings={"generations": "generation"},
            output_mappings={"model_name": "judge_model"},
        )
        return run_steps([generate, judge], rows, params, logger, "preference-dataset")


if __name__ == "__main__":
    main(preference_dataset, PreferenceDatasetParams)
