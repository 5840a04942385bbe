"""Reading and writing row datasets (JSONL or Parquet, by file extension) through fsspec."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import fsspec

from tasks.errors import DistilflowUserError

__all__ = ["read_rows", "write_rows"]

_JSONL = (".jsonl", ".json", ".ndjson")
_PARQUET = (".parquet", ".pq")


def read_rows(uri: str) -> Iterator[dict[str, Any]]:
    """Yield the rows of a JSONL or Parquet file, one at a time."""
    fs, path = fsspec.core.url_to_fs(uri)
    if not fs.exists(path):
        raise DistilflowUserError(f"{uri}: no such file; check the path or URI.")
    if fs.isdir(path):
        raise DistilflowUserError(f"{uri} is a directory; give the path of a .jsonl or .parquet file.")
    kind = _kind(uri)
    if kind == "parquet":
        yield from _read_parquet(fs, path, uri)
    else:
        yield from _read_jsonl(fs, path, uri)


def write_rows(uri: str, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSONL or Parquet, atomically; returns how many rows were written.

    Rows go to a temporary name next to the target, which is replaced only once they are all
    written: a reader sees the old file or the new one, never half of one.
    """
    kind = _kind(uri)
    fs, path = fsspec.core.url_to_fs(uri)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    try:
        if parent:
            fs.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise DistilflowUserError(f"{uri}: cannot create the output directory ({e}); choose a writable path.") from e
    temporary = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        count = _write_parquet(fs, temporary, rows) if kind == "parquet" else _write_jsonl(fs, temporary, rows)
        fs.mv(temporary, path)
    except BaseException:
        if fs.exists(temporary):
            fs.rm(temporary)
        raise
    return count


def _kind(uri: str) -> str:
    lowered = uri.lower()
    if lowered.endswith(_PARQUET):
        return "parquet"
    if lowered.endswith(_JSONL):
        return "jsonl"
    raise DistilflowUserError(
        f"{uri}: unknown dataset format; use a file name ending in .jsonl (one JSON object per line) or .parquet."
    )


def _read_jsonl(fs, path: str, uri: str) -> Iterator[dict[str, Any]]:
    with fs.open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DistilflowUserError(f"{uri}, line {number}: not UTF-8 text ({e.reason}); re-encode the file as UTF-8.") from e
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DistilflowUserError(f"{uri}, line {number}: not a JSON object ({e.msg}); is it JSONL?") from e
            if not isinstance(row, dict):
                raise DistilflowUserError(f"{uri}, line {number}: a row must be a JSON object, got {type(row).__name__}.")
            yield row


def _write_jsonl(fs, path: str, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with fs.open(path, "wt", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            count += 1
    return count


def _read_parquet(fs, path: str, uri: str) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    with fs.open(path, "rb") as f:
        try:
            parquet = pq.ParquetFile(f)
        except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise DistilflowUserError(f"{uri}: not a readable Parquet file ({e}).") from e
        for batch in parquet.iter_batches(batch_size=1024):
            yield from batch.to_pylist()


def _write_parquet(fs, path: str, rows: Iterable[dict[str, Any]]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(rows)
    table = pa.Table.from_pylist(rows)
    with fs.open(path, "wb") as f:
        pq.write_table(table, f)
    return len(rows)
