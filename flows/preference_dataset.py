"""Preference pairs, UltraFeedback style: several generators answer, a judge rates, the best and worst become a DPO pair.

    instructions >> [generate_0, generate_1, ...] >> GroupColumns >> UltraFeedback >> FormatTextGenerationDPO

    python flows/preference_dataset.py
    python flows/preference_dataset.py --generators '[{"model": "gpt-4o-mini"}, {"model": "gpt-4o"}]' --output out/dpo.parquet
"""

from __future__ import annotations

import contextlib
from typing import Literal, Union

from distilflow.flows._common import (  # noqa: I001 - first: sets Prefect's environment before Prefect loads
    BATCH_THREADS, DATA, HubPublishing, ModelSettings, RunSettings, flow_body, load_rows, main, model_endpoint, openai_llm,
)
from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from distilflow.steps.tasks import TextGeneration, UltraFeedback
from distilflow.pipeline import Pipeline
from distilflow.runner.to_dataset import run_pipeline_to_dataset
from distilflow.steps.columns import GroupColumns
from distilflow.steps.formatting import FormatTextGenerationDPO


class PreferenceDatasetParams(HubPublishing):
    """Have several models answer each instruction, a judge rate the answers, and keep the best and worst as a pair."""

    input: str = Field(default=str(DATA / "instructions.jsonl"), description="JSONL or Parquet file with an `instruction` column.")
    output: str = Field(default="output/preference_dataset.jsonl", description="Where the preference pairs go.")
    limit: Union[int, None] = Field(default=None, ge=1, description="Use only the first N input rows.")
    generators: list[ModelSettings] = Field(
        default_factory=lambda: [ModelSettings(), ModelSettings(temperature=1.0)], min_length=2, max_length=8,
        description="The models that answer, one generation each (the same model at another temperature counts).",
    )
    judge: ModelSettings = Field(default_factory=ModelSettings, description="The model that rates the answers.")
    aspect: Literal["overall-rating", "helpfulness", "honesty", "instruction-following", "truthfulness"] = Field(
        default="overall-rating", description="What the judge rates."
    )
    run: RunSettings = Field(default_factory=RunSettings)
    dry_run: bool = Field(default=False, description="Run one small batch without the cache and print the rows.")


@flow(name="preference-dataset", task_runner=ThreadPoolTaskRunner(max_workers=BATCH_THREADS))
def preference_dataset(params: PreferenceDatasetParams = PreferenceDatasetParams()):
    return flow_body(_preference_dataset, params)


def _preference_dataset(params: PreferenceDatasetParams, logger):
    rows = load_rows(params.input, params.limit, needs=["instruction"])
    with contextlib.ExitStack() as stack:
        generator_endpoints = [stack.enter_context(model_endpoint(g, logger)) for g in params.generators]
        judge_endpoint = stack.enter_context(model_endpoint(params.judge, logger))
        with Pipeline(name="preference-dataset", description=PreferenceDatasetParams.__doc__) as pipeline:
            generators = [
                TextGeneration(
                    name=f"generate_{i}",
                    llm=openai_llm(settings, endpoint),
                )
                for i, (settings, endpoint) in enumerate(zip(params.generators, generator_endpoints))
            ]
            group = GroupColumns(
                name="group", columns=["generation", "model_name"], output_columns=["generations", "generation_models"]
            )
            judge = UltraFeedback(
                name="judge",
                llm=openai_llm(params.judge, judge_endpoint),
                aspect=params.aspect,
                # ask for UltraFeedback's JSON (narrowed to the row's generations) rather than its text format
                use_default_structured_output=True,
                output_mappings={"model_name": "judge_model"},
            )
            pair = FormatTextGenerationDPO(name="pair")
            generators >> group >> judge >> pair
        return run_pipeline_to_dataset(
            pipeline, {"pair": params.output}, params.run.options(), logger, dry_run=params.dry_run, dataset=rows,
            dataset_batch_size=params.run.rows_per_batch(len(rows)),
            push_to_hub=params.push_to_hub, private=params.private,
        )


if __name__ == "__main__":
    main(preference_dataset, PreferenceDatasetParams)
