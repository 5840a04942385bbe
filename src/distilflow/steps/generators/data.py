"""`LoadDataFromDicts`: rows given as a list of dicts, handed out in batches (distilabel's)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from distilflow.steps.base import GeneratorStep, GeneratorStepOutput
from distilflow.steps.generators._batches import batches

__all__ = ["LoadDataFromDicts"]


class LoadDataFromDicts(GeneratorStep):
    """Yields the rows of `data` in batches of `batch_size`; its columns are the first row's keys.

    ```python
    loader = LoadDataFromDicts(data=[{"instruction": "What is 2+2?"}] * 5, batch_size=2)
    next(loader.process())  # ([{"instruction": "What is 2+2?"}, {"instruction": "What is 2+2?"}], False)
    ```
    """

    # Not part of the step's identity or repr: it can be a whole dataset.
    data: list[dict[str, Any]] = Field(default_factory=list, exclude=True, repr=False)

    @property
    def outputs(self) -> list[str]:
        return list(self.data[0]) if self.data else []

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        """Batches of the rows after the first `offset`; `data` itself is left as it is.

        Each row is a shallow copy, so a later step that changes its rows does not change `data`
        (which a re-run would read again).
        """
        rows = (dict(self.data[i]) for i in range(offset, len(self.data)))
        yield from batches(rows, self.batch_size)
