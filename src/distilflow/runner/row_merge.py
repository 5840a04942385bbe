"""Merging branches by row position, for a step whose branches do not cut the same batches.

A step fed by several branches normally gets batch i of each (the branches start from loaders
with the same `batch_size`, so batch i of each holds the same rows). When they do not (loaders
with different batch sizes, or a branch through a global step, which makes one batch of
everything), the rows are paired by position instead, as distilabel does: the merging step gets
`input_batch_size` rows from each branch as soon as every branch has that many, and what is left
once every branch has ended. When a branch passes a global step, whose rows come all at once at
the end, nothing is paired until every branch has ended. Branches that end with different numbers
of rows cannot be paired (a filter, a deduplication on one side): the merge fails there, naming
the counts, rather than pairing rows that do not belong together (with a global branch, before
any of its rows go on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

__all__ = ["RowMerge"]


@dataclass
class RowMerge:
    predecessors: list[str]
    batch_size: int
    wait_for_all: bool = False  # a branch passes a global step: pair nothing before every branch has ended
    arrived: dict[str, dict[int, Any]] = field(default_factory=dict)  # predecessor -> batch index -> rows|None
    taken: dict[str, int] = field(default_factory=dict)  # predecessor -> next batch index to take
    pending: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # rows not yet merged
    rows_seen: dict[str, int] = field(default_factory=dict)
    broken: Union[str, None] = None  # why no more batches can be paired
    made: int = 0

    def __post_init__(self) -> None:
        for name in self.predecessors:
            self.arrived[name], self.taken[name], self.pending[name], self.rows_seen[name] = {}, 0, [], 0

    def add(self, predecessor: str, i: int, rows: Any) -> None:
        """Batch i of `predecessor` (None: it failed or did not run)."""
        self.arrived[predecessor][i] = rows
        while self.taken[predecessor] in self.arrived[predecessor]:
            batch = self.arrived[predecessor].pop(self.taken[predecessor])
            self.taken[predecessor] += 1
            if not isinstance(batch, list):
                self.broken = self.broken or (
                    f"a batch of '{predecessor}' did not complete, so its rows cannot be paired with the other branches'"
                )
                continue
            self.pending[predecessor].extend(batch)
            self.rows_seen[predecessor] += len(batch)

    def ready(self, ended: bool) -> list[list[list[dict[str, Any]]]]:
        """The merged batches that can be made now (one list of rows per predecessor each); with
        `ended` (every branch has delivered everything), the last ones too."""
        batches = []
        while self.broken is None and (ended or not self.wait_for_all) and all(len(rows) >= self.batch_size for rows in self.pending.values()):
            batches.append(self._take(self.batch_size))
        if ended and self.broken is None and any(self.pending.values()):
            counts = {name: self.rows_seen[name] for name in self.predecessors}
            if len(set(counts.values())) > 1:
                self.broken = (
                    f"its branches made different numbers of rows {counts}, so rows cannot be paired by position; "
                    "merge branches that keep every row (a filter or deduplication belongs after the merge)"
                )
            else:
                while any(self.pending.values()):
                    batches.append(self._take(self.batch_size))
        self.made += len(batches)
        return batches

    def _take(self, size: int) -> list[list[dict[str, Any]]]:
        taken = [self.pending[name][:size] for name in self.predecessors]
        for name in self.predecessors:
            del self.pending[name][:size]
        return taken
