"""`LoadDataFromHub`: rows of a dataset on the Hugging Face Hub (or the Hub at `HF_ENDPOINT`), distilabel's.

`datasets.load_dataset` reads it: into the local cache as memory-mapped Arrow files, or, with
`streaming=True`, row by row as the batches are asked for. A private repo needs `HF_TOKEN` (or
the `huggingface_hub` login).
"""

from __future__ import annotations

import itertools
from typing import Any, Union

from pydantic import Field, PrivateAttr

from distilflow.errors import DistilflowUserError
from distilflow.steps.base import GeneratorStep, GeneratorStepOutput
from distilflow.steps.generators._batches import batches
from distilflow.steps.generators._file_loader import OptionalRuntimeParameter
from distilflow.typing import RuntimeParameter

__all__ = ["LoadDataFromHub"]


class LoadDataFromHub(GeneratorStep):
    """Loads `split` of the Hub dataset `repo_id` (its `config`), in batches of `batch_size` rows.

    ```python
    loader = LoadDataFromHub(repo_id="me/prompts", split="train", num_examples=100)
    loader.load()
    next(loader.process())  # ([{"instruction": ...}, ...], False)
    ```
    """

    repo_id: RuntimeParameter[str] = Field(default=None, description="The Hub dataset, e.g. 'org/name'.")
    split: RuntimeParameter[str] = Field(default="train", description="The split to load.")
    config: OptionalRuntimeParameter[str] = Field(default=None, description="The configuration (subset) to load.")
    revision: OptionalRuntimeParameter[str] = Field(default=None, description="A branch, tag or commit of the repo.")
    streaming: RuntimeParameter[bool] = Field(default=False, description="Read rows as they are needed, not all first.")
    num_examples: OptionalRuntimeParameter[int] = Field(default=None, description="Load at most this many rows.")
    storage_options: Union[dict[str, Any], None] = Field(
        default=None, description="Settings of the filesystem the dataset is read through, if any."
    )

    _dataset: Any = PrivateAttr(default=None)
    _columns: Union[list[str], None] = PrivateAttr(default=None)

    @property
    def outputs(self) -> list[str]:
        """The dataset's columns (read from the Hub's metadata before the step loads, when it has it)."""
        if self._columns is None and self.repo_id:
            self._columns = _columns_from_metadata(self.repo_id, self.config, self.split, self.revision)
        return list(self._columns or [])

    def load(self) -> None:
        if not self.repo_id:
            raise DistilflowUserError(
                f"LoadDataFromHub '{self.name}': repo_id is not set; give the Hub dataset ('org/name') when building "
                "the step, or as a run-time parameter."
            )
        from datasets import load_dataset

        try:
            dataset = load_dataset(self.repo_id, self.config, split=self.split, revision=self.revision,
                                   streaming=bool(self.streaming), storage_options=self.storage_options)
        except (FileNotFoundError, ValueError) as e:
            raise DistilflowUserError(
                f"LoadDataFromHub '{self.name}': cannot load {self.repo_id!r} (config {self.config!r}, split "
                f"{self.split!r}): {' '.join(str(e).split())[:300]}. Check the name, config and split, and HF_TOKEN for "
                "a private dataset."
            ) from e
        if self.num_examples is not None and not self.streaming:
            dataset = dataset.select(range(min(self.num_examples, dataset.num_rows)))
        self._dataset, self._columns = dataset, list(dataset.column_names or [])
        super().load()

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        """Batches of the rows after the first `offset` (and within the first `num_examples`)."""
        if not self._loaded:
            self.load()
        rows = iter(self._dataset)
        if self.streaming and self.num_examples is not None:
            rows = itertools.islice(rows, self.num_examples)
        yield from batches(itertools.islice(rows, offset, None), self.batch_size)


def _columns_from_metadata(repo_id: str, config: Union[str, None], split: str, revision: Union[str, None]) -> Union[list[str], None]:
    """The columns the dataset card's metadata declares (what `push_to_hub` writes), or None when it declares none."""
    try:
        from datasets import get_dataset_config_info

        info = get_dataset_config_info(repo_id, config_name=config, revision=revision)
    except Exception:  # noqa: BLE001 - no metadata (or no access yet): known once the step loads
        return None
    return list(info.features) if info.features else None
