"""`make_generator_step`: a loader for data already in memory (distilabel's helper)."""

from __future__ import annotations

from typing import Any

from distilflow.errors import DistilflowUserError
from distilflow.steps.base import GeneratorStep, StepResources
from distilflow.steps.generators.data import LoadDataFromDicts
from distilflow.steps.generators.dataset import LoadDataFromDataset, is_dataframe, is_hf_dataset

__all__ = ["make_generator_step"]


def make_generator_step(
    dataset: Any,
    pipeline: Any = None,
    batch_size: int = 50,
    input_mappings: dict[str, str] | None = None,
    output_mappings: dict[str, str] | None = None,
    resources: StepResources | None = None,
) -> GeneratorStep:
    """A `LoadDataFromDicts` for a list of dicts; a `LoadDataFromDataset` for a Hugging Face
    `datasets.Dataset` or a pandas DataFrame (used only when those libraries are installed).

    Made inside `with Pipeline(...)` (or given `pipeline`), the step joins that pipeline.
    """
    settings: dict[str, Any] = {
        "pipeline": pipeline,
        "batch_size": batch_size,
        "input_mappings": input_mappings or {},
        "output_mappings": output_mappings or {},
    }
    if resources is not None:
        settings["resources"] = resources
    if isinstance(dataset, list):
        return LoadDataFromDicts(data=dataset, **settings)
    if is_hf_dataset(dataset) or is_dataframe(dataset):
        return LoadDataFromDataset(dataset=dataset, **settings)
    raise DistilflowUserError(
        f"make_generator_step: cannot load rows from a {type(dataset).__name__}; give a list of dicts, a pandas "
        "DataFrame or a Hugging Face datasets.Dataset (for files, use LoadDataFromFileSystem or LoadDataFromDisk)."
    )
