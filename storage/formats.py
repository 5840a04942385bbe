"""JSONL and Parquet files: streaming reads, streaming writes, and joining parts into one file.

Loaders also read (never write) JSON (JSON lines, or one array of objects), CSV, and the Arrow
stream files of Hugging Face `datasets`' `save_to_disk`, each as a stream of rows: memory does not
grow with the file. An offset (`RowSkip`) passes over rows without decoding them where the format
allows (JSONL lines are not parsed, Parquet row groups are not read).

Parquet needs one schema per file, and rows arrive as dicts whose columns can vary. The schema
therefore grows instead of being fixed by the first rows: a column (or nested dict key) that first
appears later, or that held only None so far, widens the schema, and rows without it read back
None there; a column of ints that later holds floats becomes float. Widening starts a new file
("piece"); pieces are joined under the union schema when they must become one file. A real type
conflict (a column that is int in some rows and text in others) is refused with the column's name:
values are never dropped or converted between kinds silently.
"""

from __future__ import annotations

import codecs
import contextlib
import itertools
import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import fsspec

from distilflow.errors import DistilflowUserError

__all__ = [
    "FORMATS",
    "READ_FORMATS",
    "ROWS_PER_ROW_GROUP",
    "Piece",
    "RowSkip",
    "format_of",
    "iter_file_rows",
    "join_pieces",
    "read_format_of",
    "suffix_of",
    "write_jsonl",
    "write_parquet_part",
    "write_parquet_stream",
]

ROWS_PER_ROW_GROUP = 1000
_SUFFIXES = {"jsonl": (".jsonl", ".json", ".ndjson"), "parquet": (".parquet", ".pq")}
FORMATS = tuple(_SUFFIXES)
# What loaders read: `.json` may hold JSON lines or one array of objects (as Hugging Face's "json").
_READ_SUFFIXES = {"jsonl": (".jsonl", ".ndjson"), "json": (".json",), "csv": (".csv",), "parquet": (".parquet", ".pq")}
READ_FORMATS = tuple(_READ_SUFFIXES)
_COPY_BUFFER = 1 << 20
_JSONL_HINT = "a JSONL file holds one JSON object per line"
_JSON_HINT = "a JSON file holds one JSON object per line, or one array of objects"


@dataclass
class Piece:
    """One written file: where it is, how many rows it holds, and (Parquet) its schema."""

    path: str
    rows: int
    schema: Any = None


def format_of(name: str) -> str | None:
    lowered = name.lower().rstrip("/")
    return next((fmt for fmt, suffixes in _SUFFIXES.items() if lowered.endswith(suffixes)), None)


def read_format_of(name: str) -> str | None:
    lowered = name.lower().rstrip("/")
    return next((fmt for fmt, suffixes in _READ_SUFFIXES.items() if lowered.endswith(suffixes)), None)


def suffix_of(fmt: str) -> str:
    return _SUFFIXES[fmt][0]


@dataclass
class RowSkip:
    """Rows still to pass over before the first row read. Readers count it down, so one object
    carries an offset across the files of a dataset."""

    rows: int = 0


def iter_file_rows(
    fs: fsspec.AbstractFileSystem, path: str, uri: str, fmt: str, skip: RowSkip | None = None
) -> Iterator[dict[str, Any]]:
    """The rows of one file, lazily; `fmt` is one of FORMATS or READ_FORMATS, or "arrow" (an Arrow stream)."""
    readers = {"parquet": _iter_parquet, "json": _iter_json, "csv": _iter_csv, "arrow": _iter_arrow_stream}
    return readers.get(fmt, _iter_jsonl)(fs, path, uri, skip or RowSkip())


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


def _iter_jsonl(fs: fsspec.AbstractFileSystem, path: str, uri: str, skip: RowSkip) -> Iterator[dict[str, Any]]:
    with fs.open(path, "rb", block_size=_COPY_BUFFER) as f:
        yield from _json_lines_rows(_lines(f), uri, skip, _JSONL_HINT)


def _iter_json(fs: fsspec.AbstractFileSystem, path: str, uri: str, skip: RowSkip) -> Iterator[dict[str, Any]]:
    with fs.open(path, "rb", block_size=_COPY_BUFFER) as f:
        head = f.read(_COPY_BUFFER)
        if head.lstrip()[:1] == b"[":
            for index, row in enumerate(_JsonArray(f, head, uri).elements()):
                if skip.rows:
                    skip.rows -= 1
                    continue
                if not isinstance(row, dict):
                    raise DistilflowUserError(
                        f"{uri}, element {index}: a row must be a JSON object, got {type(row).__name__}; {_JSON_HINT}."
                    )
                yield row
        else:
            yield from _json_lines_rows(_lines(f, head), uri, skip, _JSON_HINT)


def _json_lines_rows(lines: Iterator[bytes], uri: str, skip: RowSkip, hint: str) -> Iterator[dict[str, Any]]:
    for number, raw in enumerate(lines, start=1):
        if skip.rows:  # passed over unparsed: a resumed run does not decode what it already has
            skip.rows -= bool(raw.strip())
            continue
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
                f"{uri}, line {number}: not valid JSON ({e.msg} at column {e.colno}); {hint}."
            ) from e
        if not isinstance(row, dict):
            raise DistilflowUserError(
                f"{uri}, line {number}: a row must be a JSON object, got {type(row).__name__}; {hint}."
            )
        yield row


class _JsonArray:
    """The elements of a file holding one JSON array, decoded one at a time from its bytes."""

    def __init__(self, f: Any, head: bytes, uri: str) -> None:
        self.f, self.uri, self.ended = f, uri, False
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.json = json.JSONDecoder()
        self.text, self.at = self._decode(head), 0

    def elements(self) -> Iterator[Any]:
        self._skip_space()
        self.at += 1  # the "[" the caller saw
        if self._skip_space() == "]":
            self.at += 1
        else:
            for index in itertools.count():
                self._skip_space()
                yield self._value(index)
                after = self._skip_space()
                self.at += 1
                if after == "]":
                    break
                if after != ",":
                    self._fail(f"element {index}", f"expected ',' or ']' after it, found {after or 'the end'!r}")
        if self._skip_space():
            self._fail("after the array", "more data follows the array")

    def _value(self, index: int) -> Any:
        while True:
            try:
                value, end = self.json.raw_decode(self.text, self.at)
            except json.JSONDecodeError as e:
                # Cut off by the end of what was read so far (not broken): read on and try again.
                cut = e.pos >= len(self.text) - 8 or e.msg.startswith("Unterminated string")
                if cut and self._fill():
                    continue
                self._fail(f"element {index}", f"{e.msg} at character {e.pos - self.at} of the element")
            if end == len(self.text) and self._fill():
                continue  # a number may go on in the next chunk
            self.at = end
            return value

    def _skip_space(self) -> str:
        """The next character that is not white space ('' at the end of the file)."""
        while True:
            while self.at < len(self.text) and self.text[self.at] in " \t\r\n":
                self.at += 1
            if self.at < len(self.text):
                return self.text[self.at]
            if not self._fill():
                return ""

    def _fill(self) -> bool:
        if self.ended:
            return False
        chunk = self.f.read(_COPY_BUFFER)
        self.ended = not chunk
        self.text, self.at = self.text[self.at :] + self._decode(chunk), 0
        return True

    def _decode(self, data: bytes) -> str:
        try:
            return self.decoder.decode(data, final=self.ended)
        except UnicodeDecodeError as e:
            raise DistilflowUserError(f"{self.uri}: not UTF-8 text ({e.reason}); re-encode the file as UTF-8.") from e

    def _fail(self, where: str, problem: str) -> None:
        raise DistilflowUserError(f"{self.uri}, {where}: not valid JSON ({problem}); {_JSON_HINT}.")


def _iter_csv(fs: fsspec.AbstractFileSystem, path: str, uri: str, skip: RowSkip) -> Iterator[dict[str, Any]]:
    import pyarrow as pa

    # A column's type comes from the first block of rows. Dates stay text, as pandas (and so Hugging
    # Face's csv loader) leaves them: the file is opened again with those columns read as strings.
    with fs.open(path, "rb") as f:
        reader = _open_csv(f, uri, {})
        dated = [field.name for field in reader.schema if pa.types.is_temporal(field.type)] if reader else []
        if reader is not None and not dated:
            yield from _csv_rows(reader, uri, skip)
    if dated:
        with fs.open(path, "rb") as f:
            yield from _csv_rows(_open_csv(f, uri, dict.fromkeys(dated, pa.string())), uri, skip)


def _open_csv(f: Any, uri: str, column_types: dict[str, Any]) -> Any:
    import pyarrow as pa
    from pyarrow import csv

    try:
        return csv.open_csv(f, convert_options=csv.ConvertOptions(column_types=column_types))
    except pa.ArrowInvalid as e:
        if "Empty CSV file" in str(e):
            return None  # no header, no rows
        raise DistilflowUserError(f"{uri}: not a CSV file pyarrow can read ({e}); check the file.") from e


def _csv_rows(reader: Any, uri: str, skip: RowSkip) -> Iterator[dict[str, Any]]:
    import pyarrow as pa

    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as e:
            raise DistilflowUserError(
                f"{uri}: {e}; a CSV column takes its type from the first rows: quote the values of a text column "
                "that starts with numbers, or convert the file to JSONL or Parquet."
            ) from e
        yield from _batch_rows(batch, skip)


def _iter_arrow_stream(fs: fsspec.AbstractFileSystem, path: str, uri: str, skip: RowSkip) -> Iterator[dict[str, Any]]:
    import pyarrow as pa

    with fs.open(path, "rb") as f:
        try:
            stream = pa.ipc.open_stream(f)
        except pa.ArrowInvalid as e:
            raise DistilflowUserError(
                f"{uri}: not an Arrow stream file ({e}); the directory was not written by `save_to_disk`, or "
                "was damaged: save the dataset again."
            ) from e
        for batch in stream:
            yield from _batch_rows(batch, skip)


def _batch_rows(batch: Any, skip: RowSkip) -> Iterator[dict[str, Any]]:
    if skip.rows:
        passed = min(skip.rows, batch.num_rows)
        skip.rows -= passed
        batch = batch.slice(passed)
    yield from batch.to_pylist()


def _lines(f: Any, pending: bytes = b"") -> Iterator[bytes]:
    """The lines of a binary file, read in large chunks: fsspec's own line iteration costs a
    round trip per line on object stores (a minute for 45 MB on S3). `pending`: bytes already read."""
    while True:
        chunk = f.read(_COPY_BUFFER)
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        yield from lines
        if not chunk:
            break
    if pending:
        yield pending


def _iter_parquet(fs: fsspec.AbstractFileSystem, path: str, uri: str, skip: RowSkip) -> Iterator[dict[str, Any]]:
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
        groups = list(range(parquet.num_row_groups))
        while groups and skip.rows >= (size := parquet.metadata.row_group(groups[0]).num_rows):
            skip.rows -= size  # a whole row group passed over: not read at all
            groups.pop(0)
        if groups:
            for batch in parquet.iter_batches(batch_size=ROWS_PER_ROW_GROUP, row_groups=groups):
                yield from _batch_rows(batch, skip)
