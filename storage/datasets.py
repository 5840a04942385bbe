"""Row datasets at a local path or fsspec URI: a single JSONL/Parquet file, or a directory of parts.

A directory dataset is read through its `_manifest.json` (the parts, in order) when it has one;
otherwise every non-hidden `*.jsonl` / `*.parquet` file directly inside it, sorted by name (names
starting with `.` or `_` are ignored, so staging and temporary files are never read as data).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import fsspec

from distilflow.storage.errors import StorageNotFoundError, bucket_of, storage_errors
from distilflow.storage.filesystems import (
    filesystem,
    is_local,
    join,
    parent_of,
    remove_quietly,
    remove_tree_quietly,
    replace,
)
from distilflow.storage.formats import (
    Piece,
    format_of,
    iter_file_rows,
    join_pieces,
    write_jsonl,
    write_parquet_stream,
)
from distilflow.storage.writer import MANIFEST, DatasetWriter, Target, resolve_target, staging_token
from distilflow.tasks.errors import DistilflowUserError

__all__ = ["check_readable", "check_writable", "read_rows", "write_rows"]


@dataclass
class _Part:
    path: str  # inside the filesystem
    uri: str  # for messages
    format: str


@dataclass
class _Dataset:
    fs: fsspec.AbstractFileSystem
    parts: list[_Part]
    manifest_path: str | None = None
    manifest: bytes | None = field(default=None, repr=False)


def read_rows(uri: str) -> Iterator[dict[str, Any]]:
    """Rows of the dataset at `uri`, one at a time, in order; never the whole dataset in memory.

    Where the dataset is and what it holds is checked now, so a wrong URI fails at the call.
    """
    return _iter_rows(_locate(uri))


def write_rows(uri: str, rows: Iterable[dict[str, Any]]) -> int:
    """Write `rows` (consumed lazily) to a file or a directory dataset, atomically; returns the row count.

    A file target is written under a hidden temporary name beside it and moved into place at the
    end: a reader, or a process killed half way, leaves the previous file whole (a killed process
    may leave a hidden `.<name>.tmp-*` file behind). A directory target gets one part (more for
    Parquet if the schema widens, see storage.formats) and a new manifest.
    """
    target = resolve_target(uri)
    if target.directory:
        with DatasetWriter(uri) as writer:
            writer.write_stream(rows)
            return writer.commit()
    with storage_errors(uri, "write"):
        return _write_file(target, rows)


def check_readable(uri: str) -> None:
    """Raise DistilflowUserError unless `uri` is a dataset: a JSONL/Parquet file, or a directory of them."""
    _locate(uri)


def check_writable(uri: str) -> None:
    """Raise DistilflowUserError unless a dataset can be written at `uri`.

    Writes and deletes a small hidden probe where the data would go, which on S3 also proves that
    the bucket exists and the credentials may write. Directories it had to create are removed.
    """
    target = resolve_target(uri)
    fs = target.fs
    directory = target.path if target.directory else parent_of(target.path)
    probe = join(directory, f".distilflow-probe-{uuid.uuid4().hex[:12]}")
    with storage_errors(uri, "write"):
        created = _make_directories(fs, directory) if is_local(fs) else []
        try:
            fs.pipe_file(probe, b"")
            fs.rm_file(probe)
        finally:
            for made in created:
                remove_tree_quietly(fs, made, only_if_empty=True)


def _write_file(target: Target, rows: Iterable[dict[str, Any]]) -> int:
    fs, path, uri = target.fs, target.path, target.uri
    parent = parent_of(path)
    if is_local(fs):
        fs.makedirs(parent or ".", exist_ok=True)
    temporary = join(parent, f".{path.rsplit('/', 1)[-1]}.tmp-{staging_token()}")
    pieces: list[Piece] = []
    try:
        if target.format == "jsonl":
            count = write_jsonl(fs, temporary, rows)
        else:
            pieces = write_parquet_stream(fs, lambda i: f"{temporary}.piece-{i:04d}", rows, uri)
            count = sum(piece.rows for piece in pieces)
            if len(pieces) == 1:
                temporary = pieces.pop().path  # already the whole file
            else:  # none (no rows: an empty file), or a widened schema: join under one schema
                join_pieces(fs, pieces, temporary, "parquet", uri)
        replace(fs, temporary, path)
    except BaseException:
        remove_quietly(fs, [temporary])
        raise
    finally:
        remove_quietly(fs, [piece.path for piece in pieces])
    return count


def _locate(uri: str) -> _Dataset:
    fs, path = filesystem(uri)
    with storage_errors(uri, "read"):
        kind = _kind_of(fs, path)
        if kind is None:
            _raise_missing(fs, path, uri)
        if kind == "file":
            fmt = format_of(path)
            if fmt is None:
                extension = os.path.splitext(path)[1] or "no extension"
                raise DistilflowUserError(
                    f"{uri}: not a JSONL or Parquet file ({extension}); give a .jsonl or .parquet file, "
                    "or a directory of them."
                )
            return _Dataset(fs, [_Part(path, uri, fmt)])
        manifest_path = join(path, MANIFEST)
        try:
            manifest = fs.cat_file(manifest_path)
        except FileNotFoundError:
            return _Dataset(fs, _listed_parts(fs, path, uri))
        return _Dataset(fs, _manifest_parts(manifest, path, uri), manifest_path, manifest)


def _kind_of(fs: fsspec.AbstractFileSystem, path: str) -> str | None:
    try:
        return "directory" if fs.info(path)["type"] == "directory" else "file"
    except FileNotFoundError as e:
        if "bucket does not exist" in str(e):
            raise
        return None


def _raise_missing(fs: fsspec.AbstractFileSystem, path: str, uri: str) -> None:
    if not is_local(fs) and "/" in path.strip("/"):
        bucket = path.strip("/").split("/", 1)[0]
        if not fs.exists(bucket):
            raise StorageNotFoundError(f"{uri}: bucket {bucket_of(uri)!r} does not exist; create it or fix the URI.")
    raise StorageNotFoundError(f"{uri}: no such file or directory; check the path or URI.")


def _listed_parts(fs: fsspec.AbstractFileSystem, path: str, uri: str) -> list[_Part]:
    names = sorted(
        entry["name"].rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=True) if entry["type"] == "file"
    )
    parts = [
        _Part(join(path, name), f"{uri.rstrip('/')}/{name}", fmt)
        for name in names
        if not name.startswith((".", "_")) and (fmt := format_of(name))
    ]
    if not parts:
        raise DistilflowUserError(
            f"{uri}: not a dataset: no {MANIFEST} and no .jsonl or .parquet files in it; point at a dataset "
            "file or a directory that holds them."
        )
    return parts


def _manifest_parts(manifest: bytes, path: str, uri: str) -> list[_Part]:
    try:
        document = json.loads(manifest)
        names = document["parts"]
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise TypeError("parts must be a list of relative paths")
    except (ValueError, KeyError, TypeError) as e:
        raise DistilflowUserError(
            f"{uri}: its {MANIFEST} is damaged ({e}); write the dataset again, or delete {MANIFEST} to read "
            "the part files in name order."
        ) from e
    fmt = document.get("format")
    return [_Part(join(path, name), f"{uri.rstrip('/')}/{name}", format_of(name) or fmt) for name in names]


def _iter_rows(dataset: _Dataset) -> Iterator[dict[str, Any]]:
    for part in dataset.parts:
        try:
            with storage_errors(part.uri, "read"):
                yield from iter_file_rows(dataset.fs, part.path, part.uri, part.format)
        except StorageNotFoundError:
            if dataset.manifest_path and _manifest_changed(dataset):
                raise DistilflowUserError(
                    f"{part.uri}: the dataset was replaced by a newer version while it was being read; read it again."
                ) from None
            raise


def _manifest_changed(dataset: _Dataset) -> bool:
    try:
        return dataset.fs.cat_file(dataset.manifest_path) != dataset.manifest
    except FileNotFoundError:
        return True


def _make_directories(fs: fsspec.AbstractFileSystem, directory: str) -> list[str]:
    """Create `directory` and its missing parents; returns those created, deepest first."""
    missing = []
    current = directory or "."
    while current and not fs.exists(current):
        missing.append(current)
        current = parent_of(current)
    fs.makedirs(directory or ".", exist_ok=True)
    return missing
