"""Row datasets at a local path or fsspec URI: a single JSONL/Parquet file, or a directory of parts.

A directory dataset is read through its `_manifest.json` (the parts, in order) when it has one;
otherwise every non-hidden `*.jsonl` / `*.parquet` file directly inside it, sorted by name (names
starting with `.` or `_` are ignored, so staging and temporary files are never read as data).

Loaders find their files here too: `find_data_files` (a file, a glob or a directory of JSONL, JSON,
CSV or Parquet files) and `find_saved_dataset` (a directory written by Hugging Face `datasets`'
`save_to_disk`, or a distilabel Distiset of them); both hand back a `DatasetFiles` whose rows are
read lazily, file by file.
"""

from __future__ import annotations

import contextlib
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
    READ_FORMATS,
    Piece,
    RowSkip,
    format_of,
    iter_file_rows,
    join_pieces,
    read_format_of,
    write_jsonl,
    write_parquet_stream,
)
from distilflow.storage.writer import MANIFEST, DatasetWriter, Target, resolve_target, staging_token
from distilflow.errors import DistilflowUserError

__all__ = [
    "DatasetFiles",
    "check_readable",
    "check_writable",
    "find_data_files",
    "find_saved_dataset",
    "read_rows",
    "write_rows",
]

#: folders of a saved Distiset that are not configurations
_DISTISET_EXTRAS = ("distiset_configs", "artifacts")


@dataclass
class _Part:
    path: str  # inside the filesystem
    uri: str  # for messages
    format: str


@dataclass
class DatasetFiles:
    """The files of a dataset, in order; `rows()` reads them one after the other, lazily."""

    fs: fsspec.AbstractFileSystem
    parts: list[_Part]
    manifest_path: str | None = None
    manifest: bytes | None = field(default=None, repr=False)
    #: column names known without reading a row (a saved dataset's features); None: see the first row
    columns: list[str] | None = None

    @property
    def uris(self) -> list[str]:
        return [part.uri for part in self.parts]

    def rows(self, skip: int = 0) -> Iterator[dict[str, Any]]:
        """Rows after the first `skip`, which are passed over without decoding where the format allows."""
        return _iter_rows(self, RowSkip(skip))


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


def check_writable(uri: str, role: str | None = None) -> None:
    """Raise DistilflowUserError unless a dataset can be written at `uri`; its message starts with
    `role` ("output", say), when given, so a user knows which of their settings it is about.

    Writes and deletes a small hidden probe where the data would go, which on S3 also proves that
    the bucket exists and the credentials may write. Directories it had to create are removed.
    """
    target = resolve_target(uri)
    fs = target.fs
    directory = target.path if target.directory else parent_of(target.path)
    probe = join(directory, f".distilflow-probe-{uuid.uuid4().hex[:12]}")
    with _as_role(role), storage_errors(uri, "write"):
        created = _make_directories(fs, directory) if is_local(fs) else []
        try:
            fs.pipe_file(probe, b"")
            fs.rm_file(probe)
        finally:
            for made in created:
                remove_tree_quietly(fs, made, only_if_empty=True)


@contextlib.contextmanager
def _as_role(role: str | None) -> Iterator[None]:
    try:
        yield
    except DistilflowUserError as e:
        if role is None:
            raise
        raise type(e)(f"{role[0].upper()}{role[1:]} {e}") from e


def find_data_files(
    uri: str, *, filetype: str | None = None, storage_options: dict[str, Any] | None = None
) -> DatasetFiles:
    """The files a loader reads, in order: one file, a glob (`**` crosses folders), or a directory.

    A directory gives its files and those of its sub-directories (not deeper; names starting with
    `.` or `_` left out), or the parts its `_manifest.json` lists. Each file is read as `filetype`,
    or as its name says (.jsonl/.ndjson, .json, .csv, .parquet/.pq); in a directory, files whose
    names say no such type are left out unless `filetype` is given.
    """
    if filetype is not None and filetype not in READ_FORMATS:
        raise DistilflowUserError(
            f"{uri}: filetype {filetype!r} is not one distilflow reads; use one of {', '.join(READ_FORMATS)}, or leave "
            "it unset to tell the type from the file names."
        )
    fs, path = filesystem(uri, storage_options)
    with storage_errors(uri, "read"):
        if any(char in path for char in "*?["):
            return DatasetFiles(fs, _matched_parts(fs, path, uri, filetype))
        kind = _kind_of(fs, path)
        if kind is None:
            _raise_missing(fs, path, uri)
        if kind == "file":
            return DatasetFiles(fs, [_Part(path, uri, _read_format(uri, filetype))])
        try:
            manifest = fs.cat_file(join(path, MANIFEST))
        except FileNotFoundError:
            return DatasetFiles(fs, _directory_parts(fs, path, uri, filetype))
        return DatasetFiles(fs, _manifest_parts(manifest, path, uri), join(path, MANIFEST), manifest)


def find_saved_dataset(
    uri: str,
    *,
    split: str | None = None,
    config: str | None = None,
    is_distiset: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> DatasetFiles:
    """The Arrow files of a directory written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`.

    The format, as `datasets` writes it: a Dataset directory holds `state.json`, whose `_data_files`
    lists its Arrow stream files in order, and `dataset_info.json` (the features); a DatasetDict
    directory holds `dataset_dict.json` (`{"splits": [...]}`) and a Dataset directory per split. A
    distilabel Distiset is a directory of those, one per configuration (beside `distiset_configs/`).
    `config` defaults to the only configuration (or "default"), `split` to the only split.
    """
    fs, path = filesystem(uri, storage_options)
    with storage_errors(uri, "read"):
        kind = _kind_of(fs, path)
        if kind is None:
            _raise_missing(fs, path, uri)
        if kind == "file":
            raise DistilflowUserError(
                f"{uri}: a file, not a directory written by `save_to_disk`; point dataset_path at that directory, "
                "or read the file with LoadDataFromFileSystem."
            )
        if is_distiset:
            names = _subdirectories(fs, path)
            configs = [name for name in names if name not in _DISTISET_EXTRAS]
            chosen = _choose(uri, config, configs, "default", ("Distiset", "configuration", "config"))
            path, uri = join(path, chosen), _child(uri, chosen)
        splits = _json_file(fs, join(path, "dataset_dict.json"), uri)
        if splits is not None:
            names = splits.get("splits") if isinstance(splits, dict) else None
            if not isinstance(names, list):
                raise DistilflowUserError(f"{uri}: its dataset_dict.json lists no splits; save the dataset again.")
            chosen = _choose(uri, split, names, None, ("dataset", "split", "split"))
            path, uri = join(path, chosen), _child(uri, chosen)
        elif split is not None:
            raise DistilflowUserError(
                f"{uri}: a single dataset without splits (no dataset_dict.json), so split={split!r} names nothing; "
                "leave split unset."
            )
        return _saved_dataset(fs, path, uri)


def _saved_dataset(fs: fsspec.AbstractFileSystem, path: str, uri: str) -> DatasetFiles:
    state = _json_file(fs, join(path, "state.json"), uri)
    if state is None:
        raise DistilflowUserError(
            f"{uri}: no state.json or dataset_dict.json, so not a directory written by `save_to_disk`; point "
            "dataset_path at one (with is_distiset=True for a Distiset)."
        )
    try:
        names = [entry["filename"] for entry in state["_data_files"]]
        if not all(isinstance(name, str) for name in names):
            raise TypeError("file names must be strings")
    except (KeyError, TypeError) as e:
        raise DistilflowUserError(
            f"{uri}: its state.json does not list the data files ({e!r}); save the dataset again."
        ) from e
    if state.get("_indices_data_files"):
        raise DistilflowUserError(
            f"{uri}: saved with an indices mapping (an old `datasets` version); load it with `datasets` and save it "
            "again after `flatten_indices()`."
        )
    info = _json_file(fs, join(path, "dataset_info.json"), uri) or {}
    features = info.get("features") if isinstance(info, dict) else None
    columns = list(features) if isinstance(features, dict) else None
    parts = [_Part(join(path, name), _child(uri, name), "arrow") for name in names]
    return DatasetFiles(fs, parts, columns=columns)


def _choose(uri: str, given: str | None, names: list[str], preferred: str | None, words: tuple[str, str, str]) -> str:
    """The name asked for, else `preferred`, else the only one; or an error naming those there are.

    `words`: what holds the names, what they name, and the setting that picks one."""
    if given is None and preferred in names:
        return preferred
    if given is None and len(names) == 1:
        return names[0]
    if given in names:
        return given
    holder, kind, setting = words
    raise DistilflowUserError(
        f"{uri}: the {holder} has no {kind} {given!r}; it has {names}: set {setting} to one of them."
        if given is not None else
        f"{uri}: the {holder} has {kind}s {names}; say which to read with {setting}=..."
    )


def _json_file(fs: fsspec.AbstractFileSystem, path: str, uri: str) -> Any:
    """The JSON document at `path`, or None when there is no such file."""
    try:
        data = fs.cat_file(path)
    except FileNotFoundError:
        return None
    try:
        return json.loads(data)
    except ValueError as e:
        name = path.rsplit("/", 1)[-1]
        raise DistilflowUserError(f"{uri}: its {name} is not valid JSON ({e}); save the dataset again.") from e


def _subdirectories(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    names = (entry["name"].rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=True)
             if entry["type"] == "directory")
    return sorted(name for name in names if not name.startswith((".", "_")))


def _child(uri: str, name: str) -> str:
    return f"{uri.rstrip('/')}/{name}"


def _shown(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """How messages name a file found by listing: its local path, or its URI."""
    return path if is_local(fs) else fs.unstrip_protocol(path)


def _read_format(uri: str, filetype: str | None) -> str:
    fmt = filetype or read_format_of(uri)
    if fmt is None:
        extension = os.path.splitext(uri.rstrip("/"))[1] or "no extension"
        raise DistilflowUserError(
            f"{uri}: the file type cannot be told from the name ({extension}); give filetype= one of "
            f"{', '.join(READ_FORMATS)}, or name the file after its type."
        )
    return fmt


def _matched_parts(fs: fsspec.AbstractFileSystem, pattern: str, uri: str, filetype: str | None) -> list[_Part]:
    fixed = pattern[: min(pattern.find(char) for char in "*?[" if char in pattern)].rsplit("/", 1)[0]
    matches = sorted(
        name for name, entry in fs.glob(pattern, detail=True).items()
        if entry["type"] == "file" and not any(part.startswith(".") for part in name[len(fixed):].split("/"))
    )
    if not matches:
        _check_bucket(fs, pattern, uri)
        where = "the bucket" if not is_local(fs) else "the file system"
        raise StorageNotFoundError(
            f"{uri}: no file in {where} matches this pattern; check it (`*` matches within one folder, `**` across "
            "folders) and that the files exist."
        )
    shown = [_shown(fs, name) for name in matches]
    return [_Part(name, uri, _read_format(uri, filetype)) for name, uri in zip(matches, shown)]


def _directory_parts(fs: fsspec.AbstractFileSystem, path: str, uri: str, filetype: str | None) -> list[_Part]:
    root = path.rstrip("/")
    found = sorted(fs.find(root, maxdepth=2))
    parts = []
    for name in found:
        relative = name[len(root):].lstrip("/")
        if any(part.startswith((".", "_")) for part in relative.split("/")):
            continue
        fmt = filetype or read_format_of(name)
        if fmt is not None:
            parts.append(_Part(name, _child(uri, relative), fmt))
    if not parts:
        kinds = filetype or "/".join(f".{fmt}" for fmt in READ_FORMATS)
        raise DistilflowUserError(
            f"{uri}: a directory with no {kinds} files in it or in its sub-directories; point data_files at "
            "the files (a path or a glob such as 'data/**/*.jsonl')."
        )
    return parts


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


def _locate(uri: str) -> DatasetFiles:
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
            return DatasetFiles(fs, [_Part(path, uri, fmt)])
        manifest_path = join(path, MANIFEST)
        try:
            manifest = fs.cat_file(manifest_path)
        except FileNotFoundError:
            return DatasetFiles(fs, _listed_parts(fs, path, uri))
        return DatasetFiles(fs, _manifest_parts(manifest, path, uri), manifest_path, manifest)


def _kind_of(fs: fsspec.AbstractFileSystem, path: str) -> str | None:
    try:
        return "directory" if fs.info(path)["type"] == "directory" else "file"
    except FileNotFoundError as e:
        if "bucket does not exist" in str(e):
            raise
        return None


def _raise_missing(fs: fsspec.AbstractFileSystem, path: str, uri: str) -> None:
    _check_bucket(fs, path, uri)
    raise StorageNotFoundError(f"{uri}: no such file or directory; check the path or URI.")


def _check_bucket(fs: fsspec.AbstractFileSystem, path: str, uri: str) -> None:
    if not is_local(fs) and "/" in path.strip("/"):
        bucket = path.strip("/").split("/", 1)[0]
        if not fs.exists(bucket):
            raise StorageNotFoundError(f"{uri}: bucket {bucket_of(uri)!r} does not exist; create it or fix the URI.")


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


def _iter_rows(dataset: DatasetFiles, skip: RowSkip | None = None) -> Iterator[dict[str, Any]]:
    for part in dataset.parts:
        try:
            with storage_errors(part.uri, "read"):
                yield from iter_file_rows(dataset.fs, part.path, part.uri, part.format, skip)
        except StorageNotFoundError:
            if dataset.manifest_path and _manifest_changed(dataset):
                raise DistilflowUserError(
                    f"{part.uri}: the dataset was replaced by a newer version while it was being read; read it again."
                ) from None
            raise


def _manifest_changed(dataset: DatasetFiles) -> bool:
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
