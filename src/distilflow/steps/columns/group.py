"""`GroupColumns`: row i of several branches made into one row, the grouped columns as lists.

This is how the generations of parallel tasks meet (`[gen_a, gen_b] >> GroupColumns(columns=
["generation", "model_name"])`): each grouped column becomes a list with one value per branch, in
the order the branches were connected, under `grouped_<column>` or the given `output_columns`.
Other columns are taken from the rows as they are (a later branch wins), and the rows'
`distilabel_metadata` is merged (see `merge_distilabel_metadata`).
"""

from __future__ import annotations

from typing import Any, Union

from pydantic import ValidationInfo, field_validator

from distilflow.errors import DistilflowUserError
from distilflow.steps.base import Step, StepInput, StepOutput
from distilflow.steps.columns.utils import DISTILABEL_METADATA_KEY, merge_distilabel_metadata, rows_side_by_side
from distilflow.typing import StepColumns

__all__ = ["GroupColumns"]


class GroupColumns(Step):
    """Group `columns` of the rows of every predecessor into lists (`grouped_<column>`, or `output_columns`).

    Input columns: the `columns`. Output columns: `output_columns`, or `grouped_<column>` for each column.
    """

    columns: list[str]
    output_columns: Union[list[str], None] = None

    @field_validator("output_columns")
    @classmethod
    def _one_name_per_column(cls, value: Union[list[str], None], info: ValidationInfo) -> Union[list[str], None]:
        columns = info.data.get("columns")
        if value is not None and columns is not None and len(value) != len(columns):
            raise DistilflowUserError(
                f"GroupColumns got {len(value)} output_columns {value} for {len(columns)} columns {columns}: give "
                "one output column name per grouped column (or leave output_columns out for grouped_<column>)"
            )
        return value

    @property
    def inputs(self) -> StepColumns:
        return self.columns

    @property
    def outputs(self) -> StepColumns:
        if self.output_columns is not None:
            return self.output_columns
        return [f"grouped_{column}" for column in self.columns]

    def process(self, *inputs: StepInput) -> StepOutput:
        renamed = dict(zip(self.columns, self.outputs))
        yield [self._group(rows, renamed) for rows in rows_side_by_side(self, inputs)]

    @staticmethod
    def _group(rows: tuple[dict[str, Any], ...], renamed: dict[str, str]) -> dict[str, Any]:
        grouped: dict[str, Any] = {}
        for row in rows:
            for key, value in row.items():
                if key == DISTILABEL_METADATA_KEY:
                    continue
                if key in renamed:
                    grouped.setdefault(renamed[key], []).append(value)
                else:
                    grouped[key] = value
        if any(DISTILABEL_METADATA_KEY in row for row in rows):
            grouped[DISTILABEL_METADATA_KEY] = merge_distilabel_metadata(*rows)
        return grouped
