"""`DataSampler`: rows that each hold a random sample of `size` rows of `data` (distilabel's).

Its typical use is few-shot examples: each output row carries, per column, the list of that
column's values in `size` rows drawn at random (with replacement) from `data`. The draws are
seeded by the step's name and the row's number, so a re-run (or a resumed one) draws alike.
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import Field, NonNegativeInt, PositiveInt

from distilflow.errors import DistilflowUserError
from distilflow.steps.base import GeneratorStep, GeneratorStepOutput
from distilflow.steps.generators._batches import batches

__all__ = ["DataSampler"]


class DataSampler(GeneratorStep):
    """Yields `samples` rows in batches; each column holds the values of `size` random rows of `data`.

    ```python
    sampler = DataSampler(data=[{"sample": f"sample {i}"} for i in range(30)], size=2, samples=10, batch_size=4)
    sampler.load()
    next(sampler.process())  # ([{"sample": ["sample 7", "sample 0"]}, ... 4 rows], False)
    ```
    A column some rows of `data` lack holds None for those rows, so every row has the same columns.
    """

    data: list[dict[str, Any]] = Field(default_factory=list, exclude=True, repr=False)
    size: PositiveInt = Field(default=2, description="Rows of `data` drawn for each output row.")
    samples: NonNegativeInt = Field(default=100, description="Output rows in total (match the other loader's rows).")

    @property
    def outputs(self) -> list[str]:
        return list(dict.fromkeys(key for row in self.data for key in row))

    def load(self) -> None:
        self._check_data()
        super().load()

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        """Batches of the `samples - offset` rows still to make (a resumed run made the others)."""
        self._check_data()
        columns = self.outputs

        def sample(index: int) -> dict[str, list[Any]]:
            # seeded by the step and the row: a re-run draws the same rows, and the tasks after it
            # find their answers in the cache instead of buying new ones
            drawn = random.Random(f"{self.name}/{index}").choices(self.data, k=self.size)
            return {column: [row.get(column) for row in drawn] for column in columns}

        yield from batches((sample(i) for i in range(offset, max(self.samples, offset))), self.batch_size)

    def _check_data(self) -> None:
        if not self.data:
            raise DistilflowUserError(
                f"DataSampler '{self.name}': `data` is empty, so there is nothing to sample; give it the rows to "
                "draw from (data=[{...}, ...])."
            )
