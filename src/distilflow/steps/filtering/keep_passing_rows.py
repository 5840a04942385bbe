"""`KeepPassingRows`: only the rows every named check passed, for columns like `keep_row_after_execution_check`.

distilabel's checking steps (APIGen's execution and semantic checks, its deduplication filters)
mark rows with `keep_row_after_<check>` instead of dropping them, and leave dropping to the user.
This step drops them. A check that could not decide (None, as a fallback row has) does not pass.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from distilflow.errors import DistilflowUserError
from distilflow.steps.base import Step, StepInput, StepOutput
from distilflow.typing import StepColumns

__all__ = ["KeepPassingRows"]


class KeepPassingRows(Step):
    """Keep the rows whose `columns` are all True; drop the others. Rows are not changed.

    Input columns: the `columns` (bool, or None for undecided). Output columns: none added.
    """

    columns: list[str] = Field(min_length=1, description="The check columns a row must have True in to be kept.")

    @property
    def inputs(self) -> StepColumns:
        return self.columns

    @property
    def outputs(self) -> StepColumns:
        return []

    def process(self, *inputs: StepInput) -> StepOutput:
        for rows in inputs:
            yield [row for row in rows if self._passes(row)]

    def _passes(self, row: dict[str, Any]) -> bool:
        missing = [column for column in self.columns if column not in row]
        if missing:
            raise DistilflowUserError(
                f"KeepPassingRows '{self.name}': a row has no column(s) {missing} (it has {sorted(row)}). Name the "
                "check columns the steps before it make, or map them with input_mappings={'<name>': '<column>'}."
            )
        return all(row[column] is True for column in self.columns)
