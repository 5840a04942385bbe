"""`QualityScorer`: rank several responses to one instruction by quality (DEITA's quality score).

Arguments, columns and the answer formats follow distilabel 1.5.3's `QualityScorer`, so its code
runs unchanged; the prompt is distilflow's own wording of the DEITA paper's quality ranking
(https://arxiv.org/abs/2312.15685). See `distilflow.steps.tasks._list_scorer` for how answers are read
and when a row is a fallback.
"""

from __future__ import annotations

from typing import Any

from distilflow.steps.tasks._list_scorer import ListScorer, numbered
from distilflow.errors import DistilflowUserError
from distilflow.typing import StepColumns

__all__ = ["QualityScorer"]


class QualityScorer(ListScorer):
    """Score each of a row's `responses` to its `instruction` for quality, all of them in one request.

    The model ranks the n responses against each other, 1 (the weakest) to n, on helpfulness,
    relevance, accuracy, depth, creativity and detail, and gives n + 1 to one that is already
    excellent and cannot be improved. It answers `[i] Score: s` lines, or with
    `use_default_structured_output=True` the JSON `{"scores": [...]}` (the schema narrowed to the
    row: n integers from 1 to n + 1). A `None` response is shown to the model as "(no text)".

    Input columns: `instruction` (str), `responses` (list of str).
    Output columns: `scores` (list of float or None, one per response), `model_name`.
    """

    _items_column = "responses"
    _schema_title = "SchemaQualityScorer"
    _item_name = "response"

    @property
    def inputs(self) -> StepColumns:
        return ["instruction", "responses"]

    def _check_other_columns(self, input: dict[str, Any]) -> None:
        instruction = input.get("instruction")
        if not isinstance(instruction, str):
            raise DistilflowUserError(
                f"column 'instruction' must be a string for QualityScorer, got {type(instruction).__name__}: "
                f"{instruction!r:.80}"
            )

    def _prompt(self, input: dict[str, Any], items: list[str], json_answer: bool) -> str:
        n = len(items)
        return (
            f"Below are {n} responses to the same question. Compare them with each other and score how good each "
            "one is, weighing helpfulness, relevance, accuracy, depth, creativity and level of detail: from 1 (the "
            f"weakest) to {n} (the best); a response so well written that it cannot be improved gets {n + 1}.\n"
            f"{self._how_to_answer(n, json_answer)}\n\n#Question#: {input['instruction']}\n#Responses#:\n{numbered(items)}"
        )
