"""What DEITA's two scorers share: one request scores every item of a list column, one score each.

`ComplexityScorer` scores a row's `instructions`, `QualityScorer` a row's `responses` to its
`instruction`. Both ask the model to rank the n items against each other (scores 1 to n, n + 1
for an item beyond the scale) and read the answer as distilabel does: `[i] Score: s` lines, or
with `use_default_structured_output=True` the JSON `{"scores": [...]}`. Comparing the items in one
request is the point of DEITA's scoring: a model tells small differences apart better side by
side than one at a time.

The `scores` column always holds exactly one entry per item (`None` where the answer said
nothing usable), so a following `ExpandColumns` can pair scores with items one to one; a row
whose answer was not fully usable is marked as a fallback, with the reason. A row whose list is
`None` (a step before failed for it) sends no request and passes through as a fallback.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from typing import Any, ClassVar, Union

from distilflow.steps.tasks.base import DISTILABEL_METADATA_KEY, Task
from distilflow.errors import DistilflowUserError
from distilflow.typing import ChatType, FormattedInput, StepColumns

__all__ = ["ListScorer"]

_logger = logging.getLogger("distilflow.steps.tasks")

# distilabel's line format, read leniently: "[2] Score: 4", any case, surrounding text ignored
_SCORE_LINE = re.compile(r"\[\s*(\d+)\s*\]\s*score\s*:\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
#: shown to the model in place of an item that is None
MISSING_ITEM = "(no text)"


class ListScorer(Task):
    """A task that scores each item of the list column `_items_column` in one request (see the module)."""

    #: the input column holding the list of texts to score
    _items_column: ClassVar[str]
    #: the title of the JSON schema (distilabel's name for it)
    _schema_title: ClassVar[str]
    #: what the prompt calls one item ("question", "response")
    _item_name: ClassVar[str]

    @property
    def outputs(self) -> StepColumns:
        return ["scores", "model_name"]

    # -- what a scorer declares ------------------------------------------------------------------

    def _prompt(self, input: dict[str, Any], items: list[str], json_answer: bool) -> str:
        """The user message for a row whose items (None shown as MISSING_ITEM) are `items`."""
        raise NotImplementedError

    def _check_other_columns(self, input: dict[str, Any]) -> None:
        """Refuse a row whose other input columns cannot be used (before any request)."""

    def _how_to_answer(self, n: int, json_answer: bool) -> str:
        """The prompt's line on the answer's format: the JSON object, or distilabel's score lines."""
        if json_answer:
            return (
                f'Answer with one JSON object, {{"scores": [...]}}, whose list holds the {n} scores in the order '
                f"of the {self._item_name}s."
            )
        return (f"Answer with one line per {self._item_name}, in order, like this:\n"
                "[1] Score: <score>\n[2] Score: <score>\n...")

    # -- the prompt ------------------------------------------------------------------------------

    def format_input(self, input: dict[str, Any]) -> ChatType:
        items = self._checked_items(input)
        if items is None:
            raise DistilflowUserError(
                f"column '{self._items_column}' is None: there is nothing to score (rows like this one, from a "
                f"step that failed for them, pass {type(self).__name__} as fallbacks without a request)"
            )
        self._check_other_columns(input)
        shown = [MISSING_ITEM if item is None else item for item in items]
        return [{"role": "user", "content": self._prompt(input, shown, self.use_default_structured_output)}]

    def _checked_items(self, input: dict[str, Any]) -> Union[list[Union[str, None]], None]:
        items = input.get(self._items_column)
        if items is None:
            return None
        if not isinstance(items, (list, tuple)) or not all(i is None or isinstance(i, str) for i in items):
            raise DistilflowUserError(
                f"column '{self._items_column}' must be a list of strings for {type(self).__name__}, got "
                f"{type(items).__name__}: {items!r:.80}"
            )
        if not items:
            raise DistilflowUserError(
                f"column '{self._items_column}' is an empty list: {type(self).__name__} needs at least one text to score"
            )
        return list(items)

    def get_structured_output(self) -> dict[str, Any]:
        """The JSON schema distilabel asks for: `{"scores": [integer, ...]}`."""
        return {
            "properties": {"scores": {"items": {"type": "integer"}, "title": "Scores", "type": "array"}},
            "required": ["scores"],
            "title": self._schema_title,
            "type": "object",
        }

    def row_structured_output(self, input: dict[str, Any]) -> Union[dict[str, Any], None]:
        """The default schema narrowed to the row's n items (n scores from 1 to n + 1), when in use."""
        if not self._default_structured_output_in_use():
            return None
        n = len(input[self._items_column])
        narrowed = copy.deepcopy(self.get_structured_output())
        scores = narrowed["properties"]["scores"]
        scores["minItems"] = scores["maxItems"] = n
        scores["items"] = {"type": "integer", "minimum": 1, "maximum": n + 1}
        return {"format": "json", "schema": narrowed}

    def _sample_input(self) -> FormattedInput:
        return self._request({
            "instruction": "<PLACEHOLDER_INSTRUCTION>",
            self._items_column: [f"<PLACEHOLDER_{self._items_column[:-1].upper()}_{i}>" for i in range(2)],
        })

    # -- the answer ------------------------------------------------------------------------------

    def format_output(self, output: Union[str, None], input: Union[dict[str, Any], None] = None) -> dict[str, Any]:
        """`{"scores": [...]}`, one float (or None) per item of the row (see the module docstring)."""
        return {"scores": self._read(output, input)[0]}

    def fallback_reason(self, output: Any, input: dict[str, Any], columns: dict[str, Any]) -> Union[str, None]:
        """Why the row's scores are not all usable: nothing readable, missing or extra scores, or one off the scale."""
        problems = self._read(output, input)[1]
        return f"UnparsableOutput: {problems[0]}" if problems else None

    def _read(self, output: Union[str, None], input: Union[dict[str, Any], None]) -> tuple[list[Any], list[str]]:
        items = (input or {}).get(self._items_column)
        if not isinstance(items, (list, tuple)):
            raise ValueError(
                f"{type(self).__name__} needs the input row, with its '{self._items_column}', to read an answer"
            )
        n = len(items)
        if output is None:
            return [None] * n, ["the model gave no answer"]
        if not isinstance(output, str):
            raise ValueError(f"expected the model's text, got {type(output).__name__}")
        readers = [_read_lines, _read_json]
        if self.use_default_structured_output:
            readers.reverse()
        scores, problems = readers[0](output, n)
        if all(s is None for s in scores):
            other, other_problems = readers[1](output, n)
            if any(s is not None for s in other):
                scores, problems = other, other_problems
        off_scale = [f"{s:g}" for s in scores if s is not None and not 1 <= s <= n + 1]
        if off_scale:
            problems.append(f"score(s) {', '.join(off_scale)} are outside 1..{n + 1}")
        return scores, problems

    # -- rows a step before failed for -----------------------------------------------------------

    def validate_rows(self, rows: list[dict[str, Any]], *, mapped: bool = False) -> None:
        """As every task's, leaving out rows whose list is None (they pass through, see `process_batch`)."""
        super().validate_rows([row for row in rows if not self._nothing_to_score(row, mapped)], mapped=mapped)

    def _nothing_to_score(self, row: dict[str, Any], mapped: bool = False) -> bool:
        view = self._map_in(row)[0] if mapped else row
        return isinstance(view, dict) and self._items_column in view and view[self._items_column] is None

    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        scorable = [row for row in rows if not self._nothing_to_score(row)]
        scored = iter(super().process_batch(scorable) if scorable else [])
        per_input = 1 if self.group_generations else self.num_generations  # the rows each input gives
        result: list[dict[str, Any]] = []
        for row in rows:
            if self._nothing_to_score(row):
                result.extend(self._passed_through(row))
            else:
                result.extend(next(scored) for _ in range(per_input))
        return result

    def _passed_through(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """The rows (as many as a scored input gives) of a row with nothing to score: a fallback each."""
        reason = (
            f"NothingToScore: column '{self._items_column}' is None (a step before {type(self).__name__} failed "
            "for this row); no request was sent"
        )
        _logger.warning("Task '%s': %s.", self.name, reason)
        generation = {"scores": None, DISTILABEL_METADATA_KEY: {f"fallback_reason_{self.name}": reason}}
        return self._rows_for_input(row, [dict(generation) for _ in range(self.num_generations)])


def _read_lines(output: str, n: int) -> tuple[list[Any], list[str]]:
    """Scores from `[i] Score: s` lines, by item number; the first line for an item counts."""
    found: dict[int, float] = {}
    for match in _SCORE_LINE.finditer(output):
        found.setdefault(int(match.group(1)), float(match.group(2)))
    if not found:
        return [None] * n, ["no line of the answer reads '[<number>] Score: <score>'"]
    scores = [found.get(i) for i in range(1, n + 1)]
    problems = []
    missing = [str(i) for i, s in enumerate(scores, 1) if s is None]
    if missing:
        problems.append(f"the answer has no score for item(s) {', '.join(missing)} of {n}")
    extra = sorted(i for i in found if not 1 <= i <= n)
    if extra:
        problems.append(f"the answer scores item(s) {', '.join(map(str, extra))}, but there are {n}")
    return scores, problems


def _read_json(output: str, n: int) -> tuple[list[Any], list[str]]:
    """Scores from the JSON `{"scores": [...]}` (in a code fence or not), cut or padded to n entries."""
    fenced = _FENCED.search(output)
    try:
        value = json.loads(fenced.group(1) if fenced else output)
    except ValueError as e:
        return [None] * n, [f"the answer is not JSON ({e})"]
    raw = value.get("scores") if isinstance(value, dict) else None
    if not isinstance(raw, list):
        return [None] * n, ["the JSON answer has no list 'scores'"]
    scores = [_number(s) for s in raw[:n]] + [None] * (n - len(raw))
    problems = []
    if len(raw) != n:
        problems.append(f"the JSON list 'scores' has {len(raw)} entries for {n} items")
    unreadable = [repr(s)[:20] for s in raw[:n] if _number(s) is None]
    if unreadable:
        problems.append(f"score(s) {', '.join(unreadable)} are not numbers")
    return scores, problems


def _number(value: Any) -> Union[float, None]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def numbered(items: list[str]) -> str:
    """The items as the prompt lists them: `[1] first`, `[2] second`, ..."""
    return "\n".join(f"[{i}] {item}" for i, item in enumerate(items, 1))
