"""`Distiset`: what `Pipeline.run()` returns, as distilabel's (leaf step name -> split -> rows).

With one leaf step its rows are `distiset["default"]["train"]`, as in distilabel; with several,
each leaf has its own name. A split is a list of row dicts that also answers the few
`datasets.Dataset` reads pipelines' users write (`column_names`, `num_rows`, `ds["column"]`,
`to_list()`), without making Hugging Face `datasets` a dependency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

__all__ = ["Dataset", "Distiset"]


class Dataset(list):
    """Rows of one split: a list of dicts; `ds["column"]` is that column's values."""

    @property
    def column_names(self) -> list[str]:
        return list(self[0]) if self else []

    @property
    def num_rows(self) -> int:
        return len(self)

    def to_list(self) -> list[dict[str, Any]]:
        return list(self)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return [row.get(key) for row in self]
        value = super().__getitem__(key)
        return Dataset(value) if isinstance(key, slice) else value


class Distiset(dict):
    """Leaf step name (or "default" when there is one leaf) -> {"train": Dataset}."""

    #: the folder of the artifacts the run's steps saved (`step.save_artifact`), if any
    artifacts_path: Union[Path, None] = None

    @classmethod
    def from_leaves(cls, leaves: dict[str, list[dict[str, Any]]], artifacts_path: Union[Path, None] = None) -> Distiset:
        if len(leaves) == 1:
            (rows,) = leaves.values()
            distiset = cls({"default": {"train": Dataset(rows)}})
        else:
            distiset = cls({name: {"train": Dataset(rows)} for name, rows in leaves.items()})
        distiset.artifacts_path = artifacts_path
        return distiset

    def rows(self, name: Union[str, None] = None) -> Dataset:
        """The rows of leaf `name` (the only one when not given)."""
        if name is None:
            if len(self) != 1:
                raise KeyError(f"this Distiset has {sorted(self)}: say which, e.g. rows({sorted(self)[0]!r})")
            name = next(iter(self))
        return self[name]["train"]

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}: {len(splits['train'])} rows" for name, splits in self.items())
        return f"Distiset({{{parts}}})"
