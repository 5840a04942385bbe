"""`ComplexityScorer`: rank a row's instructions by how complex they are (DEITA's complexity score).

Arguments, columns and the answer formats follow distilabel 1.5.3's `ComplexityScorer`, so its
code runs unchanged; the prompt is distilflow's own wording of the DEITA paper's complexity
ranking (https://arxiv.org/abs/2312.15685). See `distilflow.steps.tasks._list_scorer` for how answers
are read and when a row is a fallback.
"""

from __future__ import annotations

from typing import Any

from distilflow.steps.tasks._list_scorer import ListScorer, numbered
from distilflow.typing import StepColumns

__all__ = ["ComplexityScorer"]


class ComplexityScorer(ListScorer):
    """Score each of a row's `instructions` for complexity, all of them in one request.

    The model ranks the n instructions against each other, 1 (simplest) to n, and gives n + 1 to
    one too complex to answer. It answers `[i] Score: s` lines, or with
    `use_default_structured_output=True` the JSON `{"scores": [...]}` (the schema narrowed to the
    row: n integers from 1 to n + 1).

    Input columns: `instructions` (list of str).
    Output columns: `scores` (list of float or None, one per instruction), `model_name`.
    """

    _items_column = "instructions"
    _schema_title = "SchemaComplexityScorer"
    _item_name = "question"

    @property
    def inputs(self) -> StepColumns:
        return ["instructions"]

    def _prompt(self, input: dict[str, Any], items: list[str], json_answer: bool) -> str:
        n = len(items)
        return (
            f"How hard is each of the {n} questions below to answer well? Compare them with each other and score "
            f"each one from 1 (the simplest) to {n} (the most difficult and complex); a question too complex for "
            f"you to answer gets {n + 1}.\n{self._how_to_answer(n, json_answer)}\n\n{numbered(items)}"
        )
