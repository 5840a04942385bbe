"""`MergeColumns`: several columns of a row joined into one list column.

Each merged column adds its items (a list) or itself (any other value) to the new column, in the
order of `columns`; the merged columns leave the row. distilabel's name for the new column,
`merged_column`, is the default.
"""

from __future__ import annotations

from typing import Any, Union

from distilflow.errors import DistilflowUserError
from distilflow.steps.base import Step, StepInput, StepOutput
from distilflow.typing import StepColumns

__all__ = ["MergeColumns"]


class MergeColumns(Step):
    """Merge `columns` of each row into the list column `output_column` (default `merged_column`).

    Input columns: the `columns`. Output columns: `output_column`.
    """

    columns: list[str]
    output_column: Union[str, None] = None

    @property
    def inputs(self) -> StepColumns:
        return self.columns

    @property
    def outputs(self) -> StepColumns:
        return [self.output_column or "merged_column"]

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]
        yield [self._merge(row) for row in inputs]

    def _merge(self, row: dict[str, Any]) -> dict[str, Any]:
        missing = [column for column in self.columns if column not in row]
        if missing:
            raise DistilflowUserError(
                f"MergeColumns '{self.name}': a row has no column(s) {missing} (it has {sorted(row)}). Merge only "
                "columns the steps before it make, or map them with input_mappings={'<merged name>': '<column>'}."
            )
        merged: list[Any] = []
        for column in self.columns:
            value = row[column]
            if isinstance(value, list):
                merged.extend(value)
            else:
                merged.append(value)
        out = {key: value for key, value in row.items() if key not in self.columns}
        out[self.outputs[0]] = merged
        return out
