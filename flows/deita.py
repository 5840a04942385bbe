"""DEITA data selection: evolve instructions and responses, score them, keep the best diverse rows.

    instructions >> EvolInstruct >> ComplexityScorer >> ExpandColumns >> EvolQuality >> QualityScorer
                 >> ExpandColumns >> ConversationTemplate >> DeitaFiltering

Each instruction is evolved into harder versions (kept with the original), each version answered;
a judge scores the versions' complexity side by side. Each answer is evolved into better versions,
scored for quality side by side. Every instruction-response pair's DEITA score is complexity x
quality, and `DeitaFiltering`, a global step, keeps the `data_budget` best pairs of the whole
dataset that are not near-duplicates (https://arxiv.org/abs/2312.15685; distilabel's DEITA
pipeline, without its embedding model: see `DeitaFiltering`).

    python flows/deita.py
    python flows/deita.py --data-budget 100 --instruction-evolutions 3 --output out/deita.parquet
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

from distilflow.steps.tasks import EvolInstruct
from distilflow.steps.tasks.complexity_scorer import ComplexityScorer
from distilflow.steps.tasks.evol_quality.base import EvolQuality
from distilflow.models import OpenAILLM
from distilflow.pipeline import Pipeline
from distilflow.steps.tasks.quality_scorer import QualityScorer
from distilflow.runner.to_dataset import run_pipeline_to_dataset
from distilflow.steps.columns import ExpandColumns
from distilflow.steps.deita import DeitaFiltering
from distilflow.steps.formatting import ConversationTemplate


class DeitaParams(HubPublishing):
    """Evolve instructions and their answers, score complexity and quality, and keep the best diverse pairs."""

    input: str = Field(default=str(DATA / "instructions.jsonl"), description="JSONL or Parquet file with an `instruction` column.")
    output: str = Field(default="output/deita.jsonl", description="Where the selected instruction-response pairs go.")
    limit: Union[int, None] = Field(default=None, ge=1, description="Use only the first N input rows.")
    instruction_evolutions: int = Field(
        default=2, ge=1, le=10,
        description="Times each instruction is rewritten to be harder (each instruction gives this many + 1 pairs).",
    )
    response_evolutions: int = Field(
        default=2, ge=1, le=10,
        description="Times each answer is rewritten to be better (each pair gives this many + 1 responses).",
    )
    data_budget: int = Field(default=20, ge=1, description="How many pairs to keep, over the whole dataset.")
    # The rows are compared by hashed character n-grams of their text (no embedding model): near-copies
    # are within about 0.06 of each other, rewrites of one text about 0.15-0.35, unrelated texts 0.7 and more.
    diversity_threshold: float = Field(
        default=0.1, ge=0.0,
        description="Keep a pair only if the nearest other pair is at least this far (cosine distance of their texts).",
    )
    distance_metric: Literal["cosine", "manhattan"] = Field(default="cosine", description="How far apart pairs are measured.")
    normalize_embeddings: bool = Field(default=True, description="Scale the text vectors to length 1 before measuring.")
    evolver: ModelSettings = Field(
        default_factory=lambda: ModelSettings(temperature=0.7, max_new_tokens=512),
        description="The model that rewrites instructions and responses and answers the instructions.",
    )
    scorer: ModelSettings = Field(
        default_factory=lambda: ModelSettings(temperature=0.0),
        description="The model that scores complexity and quality (asked for JSON: structured output).",
    )
    run: RunSettings = Field(default_factory=RunSettings)
    dry_run: bool = Field(default=False, description="Run one small batch without the cache and print the rows.")


@flow(name="deita", task_runner=ThreadPoolTaskRunner(max_workers=BATCH_THREADS))
def deita(params: DeitaParams = DeitaParams()):  # noqa: B008 - Prefect shows this default in the run form
    return flow_body(_deita, params)


def _deita(params: DeitaParams, logger):
    rows = load_rows(params.input, params.limit, needs=["instruction"])
    with contextlib.ExitStack() as stack:
        evolver = stack.enter_context(model_endpoint(params.evolver, logger))
        scorer = stack.enter_context(model_endpoint(params.scorer, logger))

        def evolver_llm() -> OpenAILLM:
            return openai_llm(params.evolver, evolver)

        def scorer_llm() -> OpenAILLM:
            return openai_llm(params.scorer, scorer)

        with Pipeline(name="deita", description=DeitaParams.__doc__) as pipeline:
            evolve_instructions = EvolInstruct(
                name="evol_instruction_complexity", llm=evolver_llm(), num_evolutions=params.instruction_evolutions,
                store_evolutions=True, generate_answers=True, include_original_instruction=True,
            )
            score_complexity = ComplexityScorer(
                name="instruction_complexity_scorer", llm=scorer_llm(), use_default_structured_output=True,
                input_mappings={"instructions": "evolved_instructions"},
            )
            expand_instructions = ExpandColumns(
                name="expand_evolved_instructions", columns=["evolved_instructions", "answers", "scores"],
                output_mappings={
                    "evolved_instructions": "evolved_instruction", "answers": "answer", "scores": "evol_instruction_score",
                },
            )
            evolve_responses = EvolQuality(
                name="evol_response_quality", llm=evolver_llm(), num_evolutions=params.response_evolutions,
                store_evolutions=True, include_original_response=True,
                input_mappings={"instruction": "evolved_instruction", "response": "answer"},
            )
            score_quality = QualityScorer(
                name="response_quality_scorer", llm=scorer_llm(), use_default_structured_output=True,
                input_mappings={"instruction": "evolved_instruction", "responses": "evolved_responses"},
            )
            expand_responses = ExpandColumns(
                name="expand_evolved_responses", columns=["evolved_responses", "scores"],
                output_mappings={"evolved_responses": "evolved_response", "scores": "evol_response_score"},
            )
            conversation = ConversationTemplate(
                name="generate_conversation",
                input_mappings={"instruction": "evolved_instruction", "response": "evolved_response"},
            )
            select = DeitaFiltering(
                name="deita_filtering", data_budget=params.data_budget, diversity_threshold=params.diversity_threshold,
                distance_metric=params.distance_metric, normalize_embeddings=params.normalize_embeddings,
            )
            (
                evolve_instructions >> score_complexity >> expand_instructions >> evolve_responses >> score_quality
                >> expand_responses >> conversation >> select
            )
        return run_pipeline_to_dataset(
            pipeline, {"deita_filtering": params.output}, params.run.options(), logger, dry_run=params.dry_run,
            dataset=rows, dataset_batch_size=params.run.rows_per_batch(len(rows)),
            push_to_hub=params.push_to_hub, private=params.private,
        )


if __name__ == "__main__":
    main(deita, DeitaParams)
