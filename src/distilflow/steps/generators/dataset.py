"""`LoadDataFromDataset`: the rows of an in-memory table, a Hugging Face `datasets.Dataset` or a
pandas DataFrame, in batches (what `make_generator_step` makes of one).

Neither library is a dependency: a table can only be given by someone who has the library, and it
is recognised without importing it. A DataFrame is read through pyarrow (or held as a `Dataset`
when `datasets` is installed, as distilabel does), so both give the same Python values.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import Field, PrivateAttr, field_validator

from distilflow.steps.base import GeneratorStep, GeneratorStepOutput

__all__ = ["LoadDataFromDataset", "is_dataframe", "is_hf_dataset"]


def is_hf_dataset(value: Any) -> bool:
    datasets = sys.modules.get("datasets")  # not imported: the value cannot be one of its Datasets
    return datasets is not None and isinstance(value, datasets.Dataset)


def is_dataframe(value: Any) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


class LoadDataFromDataset(GeneratorStep):
    """Yields the rows of `dataset` (a `datasets.Dataset` or a pandas DataFrame) in batches."""

    dataset: Any = Field(exclude=True, repr=False, description="A datasets.Dataset or a pandas DataFrame.")

    # distilabel's loaders keep their table here; code written for them reads it
    _dataset: Any = PrivateAttr(None)

    @field_validator("dataset")
    @classmethod
    def _table(cls, value: Any) -> Any:
        if is_hf_dataset(value):
            return value
        if is_dataframe(value):
            try:
                from datasets import Dataset
            except ImportError:
                return value
            return Dataset.from_pandas(value, preserve_index=False)
        raise ValueError(f"a {type(value).__name__} is not a table: give a datasets.Dataset or a pandas DataFrame")

    def model_post_init(self, context: Any) -> None:
        self._dataset = self.dataset
        super().model_post_init(context)

    @property
    def outputs(self) -> list[str]:
        if is_dataframe(self.dataset):
            return [str(column) for column in self.dataset.columns]
        return list(self.dataset.column_names)

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        """Batches of the rows after the first `offset`."""
        total = len(self.dataset)
        for start in range(offset, total, self.batch_size):
            stop = min(start + self.batch_size, total)
            yield self._rows(start, stop), stop == total

    def _rows(self, start: int, stop: int) -> list[dict[str, Any]]:
        if is_dataframe(self.dataset):
            import pyarrow as pa

            return pa.Table.from_pandas(self.dataset.iloc[start:stop], preserve_index=False).to_pylist()
        columns = self.dataset[start:stop]  # column -> values, in the dataset's format (python by default)
        return [dict(zip(columns, values)) for values in zip(*columns.values())]
