"""Cutting a stream of rows into a generator step's `(rows, last_batch)` pairs.

One row is read ahead of each batch handed out, so the last batch is flagged as such even when
the number of rows is not known in advance (a file read lazily), and no more than one batch
and one row are held at a time. A row that fails to read fails the batch it belongs to, not
the one before it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from distilflow.steps.base import GeneratorStepOutput

__all__ = ["batches"]

_END = object()


def batches(rows: Iterable[dict[str, Any]], size: int) -> GeneratorStepOutput:
    """`(rows, last_batch)` pairs of `size` rows (the last may hold fewer); nothing for no rows."""
    rows = iter(rows)
    batch = list(itertools.islice(rows, size))
    while batch:
        try:
            ahead = next(rows, _END)
        except Exception:
            # a bad row after this batch: hand the batch out, and fail when the next one is asked for
            yield batch, False
            raise
        if ahead is _END:
            yield batch, True
            return
        yield batch, False
        batch = [ahead, *itertools.islice(rows, size - 1)]
