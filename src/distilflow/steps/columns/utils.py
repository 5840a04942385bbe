"""Helpers the column steps share: merging the `distilabel_metadata` of rows that become one row,
and lining up the rows of several predecessors.

Merging follows distilabel's shape, which users compare with `==`: a metadata key found in one row
keeps its value, a key found in several rows gets the list of their values, and metadata already
in list form (one dict per generation, from `group_generations=True`) is concatenated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

from distilflow.constants import DISTILABEL_METADATA_KEY
from distilflow.errors import DistilflowUserError

__all__ = ["DISTILABEL_METADATA_KEY", "merge_distilabel_metadata", "rows_side_by_side"]

# The value of distilflow.steps.tasks.base.DISTILABEL_METADATA_KEY, not imported from there: tasks.base
# imports the steps package, which may import these steps.


def merge_distilabel_metadata(*rows: dict[str, Any]) -> Union[dict[str, Any], list[dict[str, Any]]]:
    """The `distilabel_metadata` of `rows` merged into one value (rows without metadata add nothing)."""
    found = [metadata for row in rows if (metadata := row.get(DISTILABEL_METADATA_KEY)) is not None]
    if any(isinstance(metadata, list) for metadata in found):
        # per-generation lists are concatenated; a row's single dict joins them as one more entry
        merged: list[Any] = []
        for metadata in found:
            if isinstance(metadata, list):
                merged.extend(metadata)
            elif metadata:
                merged.append(metadata)
        return merged
    values: dict[str, list[Any]] = {}
    for metadata in found:
        for key, value in metadata.items():
            values.setdefault(key, []).append(value)
    return {key: given[0] if len(given) == 1 else given for key, given in values.items()}


def rows_side_by_side(step: Any, inputs: Sequence[list[dict[str, Any]]]) -> list[tuple[dict[str, Any], ...]]:
    """Row i of every input, together; inputs of different lengths are refused, never cut short."""
    lengths = [len(rows) for rows in inputs]
    if len(set(lengths)) > 1:
        raise DistilflowUserError(
            f"{type(step).__name__} '{step.name}' pairs row i of each predecessor, but their batches have "
            f"{lengths} rows: a step before it dropped or added rows. Make every branch keep one row per input "
            "row (filter after this step instead)."
        )
    return list(zip(*inputs))
