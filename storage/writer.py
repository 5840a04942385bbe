"""DatasetWriter: output that arrives batch by batch, in any order, made visible all at once.

Parts are staged under a name no reader looks at, and `commit()` publishes them in one atomic
step, so a reader (or a process killed at any point) sees the previous dataset or the new one:

* File target (`out/x.jsonl`, `s3://b/x.parquet`): parts go to `out/.x.jsonl.parts-<token>/`;
  commit joins them in index order into `out/.x.jsonl.tmp-<token>` and moves that onto the target.
* Directory target (URI ending in `/`, an existing directory, or a name without extension): parts
  go to `<dir>/parts-<token>/`; commit replaces `<dir>/_manifest.json`, then deletes the parts of
  the manifest it replaced.

A process killed before commit leaves its hidden staging behind (`.x.jsonl.parts-*`, `.x.jsonl.tmp-*`,
`parts-*` not listed by the manifest); readers never look at it and it can be deleted at any time.
The next commit to the same target removes what such a process left, when the staging's name
(host and process id) shows it came from this host and that process is gone. Staging from other
hosts, or from a writer still running, is never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import fsspec
from typing_extensions import Self

from distilflow.storage.errors import storage_errors
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
    FORMATS,
    Piece,
    format_of,
    join_pieces,
    suffix_of,
    write_jsonl,
    write_parquet_part,
    write_parquet_stream,
)
from distilflow.errors import DistilflowUserError

__all__ = ["MANIFEST", "DatasetWriter", "Target", "resolve_target", "staging_token"]

MANIFEST = "_manifest.json"
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_STAGING_NAME = re.compile(r"(?:parts|tmp|manifest)-([0-9a-f]{8})-(\d+)-[0-9a-f]{8}")


def staging_token() -> str:
    """Names one writer's staging: this host, this process, and a random part."""
    return f"{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _abandoned(name: str) -> bool:
    """Staging whose writer ran on this host and no longer runs (killed before its commit)."""
    match = _STAGING_NAME.search(name)
    if match is None or match.group(1) != _HOST or int(match.group(2)) == os.getpid():
        return False
    try:
        os.kill(int(match.group(2)), 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. another user's process: it runs
        return False
    return False


@dataclass
class Target:
    uri: str
    fs: fsspec.AbstractFileSystem
    path: str
    directory: bool
    format: str


def resolve_target(uri: str, format: str | None = None) -> Target:
    """Whether `uri` names a file or a directory dataset, and in which format it is written."""
    if format is not None and format not in FORMATS:
        raise DistilflowUserError(f"{uri}: unknown format {format!r}; use one of {', '.join(FORMATS)}.")
    fs, path = filesystem(uri)
    named = format_of(path)
    with storage_errors(uri, "write"):
        directory = uri.endswith("/") or fs.isdir(path)
    if not directory and named is None:
        extension = os.path.splitext(path.rsplit("/", 1)[-1])[1]
        if extension:
            raise DistilflowUserError(
                f"{uri}: unknown dataset format {extension!r}; name the file .jsonl or .parquet, "
                "or end the URI with '/' to write a directory dataset."
            )
        directory = True
    if not directory and format is not None and format != named:
        raise DistilflowUserError(f"{uri}: the name says {named} but format={format!r} was asked; make them agree.")
    return Target(uri, fs, path.rstrip("/"), directory, format or named or "jsonl")


class DatasetWriter:
    """Write a dataset part by part (from several threads if needed), then `commit()` it at once.

    ```python
    with DatasetWriter("s3://bucket/out/") as writer:
        writer.write_part(2, rows_c)   # any order, each index once
        writer.write_part(0, rows_a)
        writer.commit()                # rows in index order; without it, staged parts are removed
    ```
    Indexes need not be contiguous: parts are ordered by index and a missing one is simply absent.
    """

    def __init__(self, uri: str, *, format: str | None = None):
        self._target = target = resolve_target(uri, format)
        self._token = staging_token()
        if target.directory:
            self._staging_name = f"parts-{self._token}"
            self._staging = join(target.path, self._staging_name)
        else:
            name = target.path.rsplit("/", 1)[-1]
            self._staging = join(parent_of(target.path), f".{name}.parts-{self._token}")
        self._parts: dict[int, Piece | None] = {}  # None: being written by some thread
        self._lock = threading.Lock()
        self._state = "open"
        if is_local(target.fs):
            with storage_errors(uri, "write"):
                target.fs.makedirs(self._staging, exist_ok=True)

    @property
    def uri(self) -> str:
        return self._target.uri

    @property
    def rows_written(self) -> int:
        with self._lock:
            return sum(piece.rows for piece in self._parts.values() if piece is not None)

    def write_part(self, index: int, rows: list[dict[str, Any]]) -> None:
        """Stage the rows of part `index`; safe to call from several threads at once."""
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ValueError(f"a part index is an int >= 0, got {index!r}")
        self._reserve([index])
        try:
            piece = self._write_piece(self._part_path(index), list(rows))
        except BaseException:
            with self._lock:
                del self._parts[index]  # a failed part may be written again
            raise
        with self._lock:
            self._parts[index] = piece

    def write_stream(self, rows: Iterable[dict[str, Any]]) -> int:
        """Stage rows from an iterable, consumed lazily, as the part(s) after the last index so far.

        Not for use while other threads call `write_part`: the indexes it takes are decided here.
        """
        with self._lock:
            first = max(self._parts, default=-1) + 1
        fs, uri = self._target.fs, self._target.uri
        with storage_errors(uri, "write"):
            if self._target.format == "jsonl":
                self._reserve([first])
                try:
                    pieces = [Piece(self._part_path(first), write_jsonl(fs, self._part_path(first), rows))]
                except BaseException:
                    with self._lock:
                        del self._parts[first]
                    raise
            else:
                pieces = write_parquet_stream(fs, lambda i: self._part_path(first + i), rows, uri)
                self._reserve(range(first, first + len(pieces)))
        with self._lock:
            self._parts.update({first + i: piece for i, piece in enumerate(pieces)})
        return sum(piece.rows for piece in pieces)

    def commit(self) -> int:
        """Publish the staged parts in index order as the dataset at `uri`; returns the row count."""
        with self._lock:
            if self._state != "open":
                raise RuntimeError(f"this DatasetWriter for {self.uri} is already {self._state}")
            if any(piece is None for piece in self._parts.values()):
                raise RuntimeError(f"{self.uri}: commit() called while a part is still being written")
            pieces = [self._parts[i] for i in sorted(self._parts) if self._parts[i].rows]
            empty = [piece.path for piece in self._parts.values() if not piece.rows]
            self._state = "committing"
        remove_quietly(self._target.fs, empty)  # e.g. a stream that yielded nothing
        try:
            with storage_errors(self.uri, "write"):
                if self._target.directory:
                    self._publish_manifest(pieces)
                else:
                    self._publish_file(pieces)
        except BaseException:
            self._state = "open"  # so that leaving the `with` block removes the staged parts
            raise
        self._state = "committed"
        if not self._target.directory:
            self._remove_staging()
        self._remove_abandoned_staging()
        return sum(piece.rows for piece in pieces)

    def abort(self) -> None:
        """Remove the staged parts; the dataset at `uri` stays as it was."""
        with self._lock:
            if self._state in ("committed", "aborted"):
                return
            self._state = "aborted"
        self._remove_staging()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.abort()  # no-op after commit()

    def _reserve(self, indexes: Iterable[int]) -> None:
        with self._lock:
            if self._state != "open":
                raise RuntimeError(f"this DatasetWriter for {self.uri} is already {self._state}")
            taken = [i for i in indexes if i in self._parts]
            if taken:
                raise ValueError(f"{self.uri}: part {taken[0]} was already written; each index is written once")
            self._parts.update({i: None for i in indexes})

    def _part_path(self, index: int) -> str:
        return join(self._staging, f"part-{index:06d}{suffix_of(self._target.format)}")

    def _write_piece(self, path: str, rows: list[dict[str, Any]]) -> Piece:
        if not rows:
            return Piece(path, 0)  # nothing to store; the index is still used
        fs, uri = self._target.fs, self._target.uri
        with storage_errors(uri, "write"):
            if self._target.format == "parquet":
                return write_parquet_part(fs, path, rows, uri)
            return Piece(path, write_jsonl(fs, path, rows))

    def _publish_file(self, pieces: list[Piece]) -> None:
        fs, path = self._target.fs, self._target.path
        if len(pieces) == 1:
            replace(fs, pieces[0].path, path)
            return
        temporary = join(parent_of(path), f".{path.rsplit('/', 1)[-1]}.tmp-{self._token}")
        try:
            join_pieces(fs, pieces, temporary, self._target.format, self.uri)
            replace(fs, temporary, path)
        except BaseException:
            remove_quietly(fs, [temporary])
            raise

    def _publish_manifest(self, pieces: list[Piece]) -> None:
        fs, path = self._target.fs, self._target.path
        manifest = join(path, MANIFEST)
        previous = _manifest_parts(fs, manifest)
        names = [f"{self._staging_name}/{piece.path.rsplit('/', 1)[-1]}" for piece in pieces]
        document = {
            "format": self._target.format,
            "parts": names,
            "rows": sum(piece.rows for piece in pieces),
            "part_rows": [piece.rows for piece in pieces],
            "written_at": datetime.now(timezone.utc).isoformat(),
            "writer": "distilflow",
        }
        temporary = join(path, f".manifest-{self._token}.json.tmp")
        try:
            with fs.open(temporary, "wb") as f:
                f.write(json.dumps(document, indent=1).encode("utf-8"))
            replace(fs, temporary, manifest)
        except BaseException:
            remove_quietly(fs, [temporary])
            raise
        if not pieces:
            remove_tree_quietly(fs, self._staging)
        stale = [join(path, name) for name in previous if name not in set(names)]
        remove_quietly(fs, stale)
        for directory in {parent_of(file) for file in stale} - {path}:  # emptied staging of earlier versions
            remove_tree_quietly(fs, directory, only_if_empty=True)

    def _remove_staging(self) -> None:
        remove_tree_quietly(self._target.fs, self._staging)

    def _remove_abandoned_staging(self) -> None:
        """Best effort: what writers killed before their commit left next to this target."""
        fs, path = self._target.fs, self._target.path
        if self._target.directory:
            where, prefixes = path, ("parts-", ".manifest-")
        else:
            name = path.rsplit("/", 1)[-1]
            where, prefixes = parent_of(path), (f".{name}.parts-", f".{name}.tmp-")
        with contextlib.suppress(Exception):
            fs.invalidate_cache(where)
            names = [entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(where or ".", detail=False)]
            for name in names:
                if name.startswith(prefixes) and _abandoned(name):
                    remove_tree_quietly(fs, join(where, name) if where else name)


def _manifest_parts(fs: fsspec.AbstractFileSystem, manifest: str) -> list[str]:
    try:
        parts = json.loads(fs.cat_file(manifest)).get("parts", [])
    except FileNotFoundError:
        return []
    except ValueError:
        return []  # a damaged manifest is replaced; its parts cannot be known
    return [name for name in parts if isinstance(name, str) and ".." not in name.split("/")]
