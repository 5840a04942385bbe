"""`CombineOutputs`: row i of several branches made into one row with all their columns.

For branches that add different columns to the same rows (`[classify, summarize] >>
CombineOutputs()`): a column several branches have takes the value of the last one connected,
and the rows' `distilabel_metadata` is merged (see `merge_distilabel_metadata`). Its columns are
whatever the branches make, so it declares none.
"""

from __future__ import annotations

from typing import Any

from distilflow.steps.base import Step, StepInput, StepOutput
from distilflow.steps.columns.utils import DISTILABEL_METADATA_KEY, merge_distilabel_metadata, rows_side_by_side

__all__ = ["CombineOutputs"]


class CombineOutputs(Step):
    """Combine row i of every predecessor into one row.

    Input columns: those of the predecessors. Output columns: the same.
    """

    def process(self, *inputs: StepInput) -> StepOutput:
        yield [_combine(rows) for rows in rows_side_by_side(self, inputs)]


def _combine(rows: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    combined: dict[str, Any] = {}
    for row in rows:
        combined.update((key, value) for key, value in row.items() if key != DISTILABEL_METADATA_KEY)
    if any(DISTILABEL_METADATA_KEY in row for row in rows):
        combined[DISTILABEL_METADATA_KEY] = merge_distilabel_metadata(*rows)
    return combined
