"""`KeepColumns`: rows reduced to the listed columns, in the listed order.

The order matters to users: it is the column order of the dataset the pipeline writes. A row
missing one of the columns is refused with the columns it has, rather than written without it.
"""

from __future__ import annotations

from typing import Any

from distilflow.errors import DistilflowUserError
from distilflow.steps.base import Step, StepInput, StepOutput
from distilflow.typing import StepColumns

__all__ = ["KeepColumns"]


class KeepColumns(Step):
    """Keep only `columns` of each row, in that order.

    Input columns: the `columns`. Output columns: the `columns`.
    """

    columns: list[str]

    @property
    def inputs(self) -> StepColumns:
        return self.columns

    @property
    def outputs(self) -> StepColumns:
        return self.columns

    def process(self, *inputs: StepInput) -> StepOutput:
        for rows in inputs:
            yield [self._keep(row) for row in rows]

    def _keep(self, row: dict[str, Any]) -> dict[str, Any]:
        missing = [column for column in self.columns if column not in row]
        if missing:
            raise DistilflowUserError(
                f"KeepColumns '{self.name}': a row has no column(s) {missing} (it has {sorted(row)}). Keep only "
                "columns the steps before it make, or map them with input_mappings={'<kept name>': '<column>'}."
            )
        return {column: row[column] for column in self.columns}
