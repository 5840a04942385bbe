"""JSONL and Parquet files: streaming reads, streaming writes, and joining parts into one file.

Parquet needs one schema per file, and rows arrive as dicts whose columns can vary. The schema
therefore grows instead of being fixed by the first rows: a column (or nested dict key) that first
appears later, or that held only None so far, widens the schema, and rows without it read back
None there; a column of ints that later holds floats becomes float. Widening starts a new file
("piece"); pieces are joined under the union schema when they must become one file. A real type
conflict (a column that is int in some rows and text in others) is refused with the column's name:
values are never dropped or converted between kinds silently.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import fsspec

from distilflow.tasks.errors import DistilflowUserError

__all__ = [
    "FORMATS",
    "ROWS_PER_ROW_GROUP",
    "Piece",
    "format_of",
    "iter_file_rows",
    "join_pieces",
    "suffix_of",
    "write_jsonl",
    "write_parquet_part",
    "write_parquet_stream",
]

ROWS_PER_ROW_GROUP = 1000
_SUFFIXES = {"jsonl": (".jsonl", ".json", ".ndjson"), "parquet": (".parquet", ".pq")}
FORMATS = tuple(_SUFFIXES)
_COPY_BUFFER = 1 << 20


@dataclass
class Piece:
    """One written file: where it is, how many rows it holds, and (Parquet) its schema."""

    path: str
    rows: int
    schema: Any = None


def format_of(name: str) -> str | None:
    lowered = name.lower().rstrip("/")
    return next((fmt for fmt, suffixes in _SUFFIXES.items() if lowered.endswith(suffixes)), None)


def suffix_of(fmt: str) -> str:
    return _SUFFIXES[fmt][0]


def iter_file_rows(fs: fsspec.AbstractFileSystem, path: str, uri: str, fmt: str) -> Iterator[dict[str, Any]]:
    return _iter_parquet(fs, path, uri) if fmt == "parquet" else _iter_jsonl(fs, path, uri)


def write_jsonl(fs: fsspec.AbstractFileSystem, path: str, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with fs.open(path, "wb") as f:
        for row in rows:
            # default=str: values JSON cannot hold (datetimes, paths) are kept as their text.
            f.write(json.dumps(row, ensure_ascii=False, default=str).encode("utf-8") + b"\n")
            count += 1
    return count


def write_parquet_part(fs: fsspec.AbstractFileSystem, path: str, rows: list[dict[str, Any]], uri: str) -> Piece:
    import pyarrow.parquet as pq

    table = _table(rows, uri, first_row=0)
    with fs.open(path, "wb") as f, _unwritable_rows(uri):
        pq.write_table(table, f, row_group_size=ROWS_PER_ROW_GROUP)
    return Piece(path, len(table), table.schema)


def write_parquet_stream(
    fs: fsspec.AbstractFileSystem, path_of_piece: Callable[[int], str], rows: Iterable[dict[str, Any]], uri: str
) -> list[Piece]:
    """Write rows in row groups, opening a new piece whenever the schema has to widen.

    On failure the pieces written so far are deleted, so a caller has nothing to clean up.
    """
    pieces: list[Piece] = []
    current: _OpenParquet | None = None
    iterator = iter(rows)
    try:
        with _unwritable_rows(uri):
            while chunk := list(itertools.islice(iterator, ROWS_PER_ROW_GROUP)):
                table = _table(chunk, uri, first_row=sum(piece.rows for piece in pieces))
                if current is not None:
                    widened = unify_schemas([current.schema, table.schema], uri)
                    if not widened.equals(current.schema):
                        current = current.close()
                    table = conform(table, widened)
                if current is None:
                    pieces.append(Piece(path_of_piece(len(pieces)), 0, table.schema))
                    current = _OpenParquet(fs, pieces[-1].path, table.schema)
                current.writer.write_table(table)
                pieces[-1].rows += len(table)
    except BaseException:
        if current is not None:
            current.close()
        for piece in pieces:
            with contextlib.suppress(Exception):
                fs.rm_file(piece.path)
        raise
    if current is not None:
        current.close()
    return pieces


class _OpenParquet:
    def __init__(self, fs: fsspec.AbstractFileSystem, path: str, schema: Any):
        import pyarrow.parquet as pq

        self.schema = schema
        self.file = fs.open(path, "wb")
        self.writer = pq.ParquetWriter(self.file, schema)

    def close(self) -> None:
        try:
            self.writer.close()
        finally:
            self.file.close()


def join_pieces(fs: fsspec.AbstractFileSystem, pieces: list[Piece], target: str, fmt: str, uri: str) -> None:
    """Concatenate pieces, in order, into one file at `target`, one piece in memory at most."""
    if fmt == "jsonl":
        with fs.open(target, "wb") as out:
            for piece in pieces:
                with fs.open(piece.path, "rb") as f:
                    shutil.copyfileobj(f, out, _COPY_BUFFER)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = unify_schemas([piece.schema for piece in pieces], uri) if pieces else pa.schema([])
    with fs.open(target, "wb") as out, pq.ParquetWriter(out, schema) as writer:
        for piece in pieces:
            with fs.open(piece.path, "rb") as f:
                for batch in pq.ParquetFile(f, pre_buffer=False).iter_batches(batch_size=ROWS_PER_ROW_GROUP):
                    writer.write_table(conform(pa.Table.from_batches([batch]), schema))


def unify_schemas(schemas: list[Any], uri: str) -> Any:
    import pyarrow as pa

    try:
        # "permissive": a column that was all None takes the type of later values, int widens to
        # float, and struct columns gain the fields of later rows.
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as e:
        raise DistilflowUserError(
            f"{uri}: rows do not fit one Parquet schema ({e}); give each column one type in every row "
            "(None is fine for a missing value), or write JSONL, which takes any JSON value."
        ) from e


def conform(table: Any, schema: Any) -> Any:
    """`table` under `schema`, which holds all its columns: absent columns become nulls."""
    import pyarrow as pa

    if table.schema.equals(schema):
        return table
    columns = [
        table.column(field.name) if field.name in table.column_names else pa.nulls(len(table), field.type)
        for field in schema
    ]
    return pa.Table.from_arrays(columns, names=schema.names).cast(schema)


@contextlib.contextmanager
def _unwritable_rows(uri: str) -> Iterator[None]:
    import pyarrow as pa

    try:
        yield
    except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise DistilflowUserError(
            f"{uri}: rows cannot be stored as Parquet ({e}); store such values differently (an empty dict "
            "has no Parquet type: use None), or write JSONL, which takes any JSON value."
        ) from e


def _table(rows: list[dict[str, Any]], uri: str, first_row: int) -> Any:
    import pyarrow as pa

    # Not Table.from_pylist(rows): it takes the column names from the first row only and drops
    # any other key without a word.
    names = dict.fromkeys(name for row in rows for name in row)
    if not names:
        raise DistilflowUserError(f"{uri}: rows {first_row}-{first_row + len(rows) - 1} have no columns; "
                                  "Parquet cannot count rows without columns: write JSONL.")
    try:
        return pa.Table.from_pydict({name: [row.get(name) for row in rows] for name in names})
    except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        last = first_row + len(rows) - 1
        raise DistilflowUserError(
            f"{uri}: rows {first_row}-{last} cannot be stored as Parquet ({e}); give each column one type "
            "(None is fine for a missing value), or write JSONL, which takes any JSON value."
        ) from e


def _iter_jsonl(fs: fsspec.AbstractFileSystem, path: str, uri: str) -> Iterator[dict[str, Any]]:
    with fs.open(path, "rb", block_size=_COPY_BUFFER) as f:
        for number, raw in enumerate(_lines(f), start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DistilflowUserError(
                    f"{uri}, line {number}: not UTF-8 text ({e.reason} at byte {e.start}); re-encode the file as UTF-8."
                ) from e
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DistilflowUserError(
                    f"{uri}, line {number}: not valid JSON ({e.msg} at column {e.colno}); a JSONL file holds "
                    "one JSON object per line."
                ) from e
            if not isinstance(row, dict):
                raise DistilflowUserError(
                    f"{uri}, line {number}: a row must be a JSON object, got {type(row).__name__}; "
                    "a JSONL file holds one JSON object per line."
                )
            yield row


def _lines(f: Any) -> Iterator[bytes]:
    """The lines of a binary file, read in large chunks: fsspec's own line iteration costs a
    round trip per line on object stores (a minute for 45 MB on S3)."""
    pending = b""
    while chunk := f.read(_COPY_BUFFER):
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        yield from lines
    if pending:
        yield pending


def _iter_parquet(fs: fsspec.AbstractFileSystem, path: str, uri: str) -> Iterator[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with fs.open(path, "rb") as f:
        try:
            # pre_buffer (pyarrow's default) reads every row group up front: the whole file in memory.
            parquet = pq.ParquetFile(f, pre_buffer=False)
        except (pa.ArrowInvalid, OSError) as e:
            if isinstance(e, (FileNotFoundError, PermissionError)):
                raise
            raise DistilflowUserError(
                f"{uri}: not a Parquet file ({e}); check the file, or give it the extension of its real format."
            ) from e
        for batch in parquet.iter_batches(batch_size=ROWS_PER_ROW_GROUP):
            yield from batch.to_pylist()
