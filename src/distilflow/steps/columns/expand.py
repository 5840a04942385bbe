"""`ExpandColumns`: a row whose columns hold lists made into one row per item.

Row `{"q": "x", "answers": ["a", "b"]}` expanded on `answers` gives `{"q": "x", "answers": "a"}` and
`{"q": "x", "answers": "b"}`. Several columns are expanded together (item i of each goes to row i),
so they must hold lists of one length. `columns` may map a column to a new name; the new column gets
the item and the original column is kept, as in distilabel. `encoded` columns hold JSON text of a
list (an LLM's parsed answer) and are decoded first.

`split_statistics=True` divides the token counts in `distilabel_metadata["statistics_<step>"]` by
the number of rows made, so totals summed over the rows stay those of the one request (counts
become lists, as in distilabel). Metadata that is already one entry per generation (a task with
`group_generations=True`) gives each row its own entry instead.

A row whose expanded columns are all None (a task's failed row) passes through as one row, so the
failure stays visible; a row whose lists are empty makes no rows, as in distilabel (logged).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Union

from pydantic import Field, ValidationInfo, field_validator

from distilflow.errors import DistilflowUserError
from distilflow.steps.base import Step, StepInput, StepOutput
from distilflow.steps.columns.utils import DISTILABEL_METADATA_KEY
from distilflow.typing import StepColumns

__all__ = ["ExpandColumns"]

_logger = logging.getLogger("distilflow.steps.tasks")


class ExpandColumns(Step):
    """Expand list `columns` into one row per item.

    `columns`: the columns to expand, or column -> name of the column the items go to.
    `encoded`: True, or the columns (among `columns`) that hold a JSON-encoded list.
    `split_statistics`: divide the rows' token statistics among the rows made.

    Input columns: the keys of `columns`. Output columns: the names they map to.
    """

    columns: Union[dict[str, str], list[str]]
    encoded: Union[bool, list[str]] = Field(default=False, validate_default=True)
    split_statistics: bool = False

    @field_validator("columns")
    @classmethod
    def _as_mapping(cls, value: Union[dict[str, str], list[str]]) -> dict[str, str]:
        if isinstance(value, list):
            return {column: column for column in value}
        return {column: new or column for column, new in value.items()}

    @field_validator("encoded")
    @classmethod
    def _as_columns(cls, value: Union[bool, list[str]], info: ValidationInfo) -> list[str]:
        columns = info.data.get("columns") or {}
        if isinstance(value, bool):
            return list(columns) if value else []
        unknown = [column for column in value if column not in columns]
        if unknown:
            raise DistilflowUserError(
                f"ExpandColumns: encoded columns {unknown} are not among the columns to expand {list(columns)}; "
                "list only expanded columns in `encoded` (or pass encoded=True for all of them)"
            )
        return value

    @property
    def inputs(self) -> StepColumns:
        return list(self.columns)

    @property
    def outputs(self) -> StepColumns:
        return list(self.columns.values())

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]
        expanded, emptied = [], 0
        for row in inputs:
            rows = self._expand(row)
            emptied += not rows
            expanded.extend(rows)
        if emptied:
            _logger.warning(
                "ExpandColumns '%s': %d row(s) held empty lists in %s and made no rows.",
                self.name, emptied, list(self.columns),
            )
        yield expanded

    def _expand(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        items = {column: self._items(row, column) for column in self.columns}
        lengths = {column: len(values) for column, values in items.items() if values is not None}
        if not lengths:  # nothing to expand: a failed row keeps its None columns
            return [{**row, **{new: None for new in self.columns.values()}}]
        if len(set(lengths.values())) > 1:
            raise DistilflowUserError(
                f"ExpandColumns '{self.name}': a row's lists have different lengths {lengths}, so item i of each "
                "cannot go to row i. Expand those columns in separate ExpandColumns steps."
            )
        n = next(iter(lengths.values()))
        metadata = self._metadata_per_row(row, n)
        expanded = []
        for i in range(n):
            out = dict(row)
            for column, new in self.columns.items():
                out[new] = items[column][i] if items[column] is not None else None
            if metadata is not None:
                out[DISTILABEL_METADATA_KEY] = metadata[i]
            expanded.append(out)
        return expanded

    def _items(self, row: dict[str, Any], column: str) -> Union[list[Any], None]:
        if column not in row:
            raise DistilflowUserError(
                f"ExpandColumns '{self.name}': a row has no column '{column}' (it has {sorted(row)}). Expand only "
                "columns the steps before it make."
            )
        value = row[column]
        if column in self.encoded and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise DistilflowUserError(
                    f"ExpandColumns '{self.name}': column '{column}' is in `encoded` but holds no JSON ({e}): "
                    f"{value[:80]!r}. Leave it out of `encoded` if it already holds lists."
                ) from None
        if value is None or isinstance(value, (list, tuple)):
            return value
        fix = f"set encoded=['{column}'] if it holds a JSON list" if isinstance(value, str) else "expand only list columns"
        raise DistilflowUserError(
            f"ExpandColumns '{self.name}': column '{column}' holds a {type(value).__name__}, not a list: {fix}."
        )

    def _metadata_per_row(self, row: dict[str, Any], n: int) -> Union[list[Any], None]:
        """The `distilabel_metadata` of each of the `n` rows made (None: the row has none)."""
        metadata = row.get(DISTILABEL_METADATA_KEY)
        if metadata is None:
            return None
        if isinstance(metadata, list):
            if not self.split_statistics:
                return [list(metadata) for _ in range(n)]
            if len(metadata) != n:
                raise DistilflowUserError(
                    f"ExpandColumns '{self.name}': split_statistics gives each of the {n} rows one entry of the "
                    f"row's per-generation distilabel_metadata, but it has {len(metadata)}. Use "
                    "split_statistics=False to copy the metadata to every row."
                )
            return list(metadata)
        if self.split_statistics:
            metadata = {key: _split(key, value, n) for key, value in metadata.items()}
        return [dict(metadata) for _ in range(n)]


def _split(key: str, value: Any, n: int) -> Any:
    """Token counts of a `statistics_<step>` entry divided among `n` rows (as lists, like distilabel's)."""
    if not (key.startswith("statistics_") and isinstance(value, dict)):
        return value
    if "input_tokens" not in value or "output_tokens" not in value:
        return value
    return {**value, "input_tokens": _divided(value["input_tokens"], n), "output_tokens": _divided(value["output_tokens"], n)}


def _divided(tokens: Any, n: int) -> Any:
    counts = tokens if isinstance(tokens, list) else [tokens]
    return [count // n if isinstance(count, int) else count for count in counts]
