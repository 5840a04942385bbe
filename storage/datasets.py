"""Reading and writing row datasets (JSONL) through fsspec."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import fsspec

from tasks.errors import DistilflowUserError

__all__ = ["read_rows", "write_rows"]


def read_rows(uri: str) -> Iterator[dict[str, Any]]:
    """Yield the rows of a JSONL file, one at a time."""
    fs, path = fsspec.core.url_to_fs(uri)
    if not fs.exists(path):
        raise DistilflowUserError(f"{uri}: no such file; check the path or URI.")
    with fs.open(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DistilflowUserError(f"{uri}, line {number}: not a JSON object ({e.msg}); is it JSONL?") from e
            if not isinstance(row, dict):
                raise DistilflowUserError(f"{uri}, line {number}: a row must be a JSON object, got {type(row).__name__}.")
            yield row


def write_rows(uri: str, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSONL, atomically; returns how many rows were written."""
    fs, path = fsspec.core.url_to_fs(uri)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    temporary = f"{path}.tmp-{uuid.uuid4().hex}"
    count = 0
    try:
        with fs.open(temporary, "wt", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
                count += 1
        fs.mv(temporary, path)
    except BaseException:
        if fs.exists(temporary):
            fs.rm(temporary)
        raise
    return count
