"""`LoadDataFromDisk`: rows of a directory written by Hugging Face `datasets`' `save_to_disk`
(a Dataset, a DatasetDict, or a distilabel Distiset of them), local or at an fsspec URI (distilabel's).

The Arrow stream files the directory's `state.json` lists are read with pyarrow, batch by batch,
so `datasets` is not needed and memory does not grow with the dataset. Values are as Arrow holds
them: feature types that `datasets` decodes on access (Image, Audio) come as their stored dicts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from pydantic import Field

from distilflow.errors import DistilflowUserError
from distilflow.steps.generators._file_loader import FileLoader, OptionalRuntimeParameter
from distilflow.typing import RuntimeParameter

__all__ = ["LoadDataFromDisk"]


class LoadDataFromDisk(FileLoader):
    """Loads a dataset saved with `save_to_disk`: `dataset_path` is its directory (or URI).

    A DatasetDict needs `split` when it has more than one; a Distiset (`is_distiset=True`) needs
    `config` when it has more than one configuration (and none is named "default"). Its `outputs`
    are the saved features' names.

    ```python
    loader = LoadDataFromDisk(dataset_path="s3://bucket/my-distiset", is_distiset=True, config="leaf_step_1")
    loader.load()
    next(loader.process())  # ([{"a": 1}, {"a": 2}, {"a": 3}], True)
    ```
    """

    dataset_path: RuntimeParameter[Union[str, Path]] = Field(
        default=None, description="The directory the dataset or Distiset was saved to."
    )
    split: OptionalRuntimeParameter[str] = Field(
        default=None, description="The split of a DatasetDict to load (default: its only split)."
    )
    config: OptionalRuntimeParameter[str] = Field(
        default=None, description="The Distiset configuration to load (default: 'default', or its only one)."
    )
    is_distiset: OptionalRuntimeParameter[bool] = Field(
        default=False, description="Whether dataset_path holds a Distiset."
    )
    keep_in_memory: OptionalRuntimeParameter[bool] = Field(
        default=None, description="Accepted for distilabel's code: distilflow reads lazily, never all in memory."
    )

    def _source(self) -> tuple | None:
        if self.dataset_path is None:
            return None
        return str(self.dataset_path), self.split, self.config, bool(self.is_distiset)

    def _find(self) -> Any:
        from distilflow.storage.datasets import find_saved_dataset

        if self.dataset_path is None:
            raise DistilflowUserError(
                "dataset_path is not set; give the directory the dataset was saved to (dataset_path=... when "
                "building the step, or as a run-time parameter)."
            )
        return find_saved_dataset(
            str(self.dataset_path), split=self.split, config=self.config, is_distiset=bool(self.is_distiset),
            storage_options=self.storage_options,
        )
