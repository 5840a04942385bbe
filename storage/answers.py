"""The persistent store of the answer cache: one small JSON object per model answer, named by its key.

Layout: `<location>/answers/<key[:2]>/<key>.json`, holding `{"answer": <answer>}` as compact UTF-8
JSON (a wrapper object, so the format can grow). The key is a sha256 hex digest made by the caller.

Why one object per answer:

* Lookup by key needs no index: the key is the name, so there is nothing to load, rebuild or lock
  before the first lookup, and nothing that can disagree with the answers themselves.
* It works on any fsspec store: a whole-object write and a read by name are all it needs, which
  every object store offers (there are no appends and no renames on S3).
* It is crash-safe: each answer is written whole or not at all (locally a hidden temporary file
  renamed onto the name; on object stores a single PUT), so a crash loses at most the answers in
  flight and never damages another. A file damaged anyway (a filesystem without atomic renames)
  counts as missing, with a warning, and is rewritten by the next answer for that key.
* Two runs can share it: writers never coordinate, the last writer of a key wins and readers see
  either the old answer or the new one. Answers for the same key are interchangeable by design.

The cost: one PUT per answer on S3 (and one GET per looked-up key, fetched concurrently by a
single `get_many`), and, locally, one small file per answer, sharded into 256 directories by the
key's first two hex digits so no directory grows huge.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from storage.errors import _s3_error_code, storage_errors
from storage.filesystems import filesystem, is_local
from tasks.errors import DistilflowUserError

__all__ = ["AnswerStore", "answer_store", "check_answer_store"]

_log = logging.getLogger("distilflow.storage")

_KEY = re.compile(r"[0-9a-f]{64}")
_GLOB = re.compile(r"[*?\[]")  # what fsspec's path expansion treats as a pattern (glob.has_magic)
_DIRECTORY = "answers"
_SUFFIX = ".json"


class AnswerStore:
    """Answers by key under `<location>/answers/`, at a local path or any fsspec URI (s3:// included).

    Thread-safe; use `answer_store(location)` to share one instance per location in a process.
    """

    location: str

    def __init__(self, location: str):
        self.location = _resolve(location)
        self._uri = f"{self.location.rstrip('/')}/{_DIRECTORY}"
        fs, root = filesystem(self._uri)
        self._local = is_local(fs)
        self._root = root.rstrip("/")  # the filesystem's path of `<location>/answers`
        self._shards: set[str] = set()  # local shard directories known to exist

    def __repr__(self) -> str:
        return f"AnswerStore({self.location!r})"

    # --- reading ----------------------------------------------------------------------------------

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """key -> answer for the keys that are stored; missing or unreadable ones are absent."""
        paths = {self._path(key): key for key in keys}  # validates every key before any I/O
        if not paths:
            return {}
        return self._get_local(paths) if self._local else self._get_remote(paths)

    def _get_local(self, paths: dict[str, str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for path, key in paths.items():
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            except OSError as e:
                with storage_errors(path, "read"):
                    raise e
            answer = _decode(data, path)
            if answer is not _ABSENT:
                found[key] = answer
        return found

    def _get_remote(self, paths: dict[str, str]) -> dict[str, Any]:
        fs, _ = filesystem(self._uri)
        with storage_errors(self._uri, "read"):
            # One call for the whole list: s3fs fetches the objects concurrently. on_error="return"
            # rather than "omit": a missing object is a miss, but a missing bucket, rejected
            # credentials or an unreachable endpoint must reach the user, not look like misses.
            if _GLOB.search(self._root):
                # fs.cat would read "[", "*" or "?" in the location as a pattern: read the paths literally.
                values = fs.cat_ranges(list(paths), None, None, on_error="return")
                results = dict(zip(paths, values))
            else:
                results = fs.cat(list(paths), on_error="return")
            for value in results.values():
                if isinstance(value, BaseException) and not _is_missing_object(value):
                    raise value
        found: dict[str, Any] = {}
        for path, value in results.items():
            key = paths.get(path)  # fs.cat answers under the paths it was given (no glob characters)
            if key is None or isinstance(value, BaseException):
                continue
            answer = _decode(value, self._file_uri(key))
            if answer is not _ABSENT:
                found[key] = answer
        return found

    def __len__(self) -> int:
        """How many answers are stored (a listing: for tests and reports, not for hot paths)."""
        if self._local:
            count = 0
            try:
                shards = [entry.path for entry in os.scandir(self._root) if entry.is_dir()]
            except FileNotFoundError:
                return 0
            except OSError as e:
                with storage_errors(self._uri, "read"):
                    raise e
            for shard in shards:
                with contextlib.suppress(FileNotFoundError):
                    count += sum(1 for name in os.listdir(shard) if _is_answer_name(name))
            return count
        fs, _ = filesystem(self._uri)
        with storage_errors(self._uri, "read"):
            try:
                names = fs.find(self._root, withdirs=False)
            except FileNotFoundError as e:
                if not _is_missing_object(e):
                    raise
                return 0
        return sum(1 for name in names if _is_answer_name(name.rsplit("/", 1)[-1]))

    # --- writing ----------------------------------------------------------------------------------

    def put(self, key: str, answer: Any) -> None:
        """Store one answer, whole or not at all; an answer already stored under `key` is replaced."""
        path = self._path(key)
        data = _encode(answer)  # a value that is not JSON-able fails here, before any I/O
        if self._local:
            self._put_local(key, path, data)
        else:
            fs, _ = filesystem(self._uri)
            with storage_errors(self._file_uri(key), "write"):
                fs.pipe_file(path, data)  # one PUT: an object store shows the object whole or not at all

    def _put_local(self, key: str, path: str, data: bytes) -> None:
        shard = f"{self._root}/{key[:2]}"
        temporary = f"{shard}/.{key}{_SUFFIX}.tmp-{uuid.uuid4().hex}"
        try:
            for attempt in (1, 2):
                if shard not in self._shards or attempt == 2:
                    os.makedirs(shard, exist_ok=True)
                    self._shards.add(shard)
                try:
                    with open(temporary, "xb") as f:
                        f.write(data)
                    break
                except FileNotFoundError:
                    if attempt == 2:
                        raise
                    self._shards.discard(shard)  # removed behind our back: create it again
            os.replace(temporary, path)  # atomic: readers see the old file or the new one
        except OSError as e:
            with contextlib.suppress(OSError):
                os.remove(temporary)
            with storage_errors(path, "write"):
                raise e
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(temporary)
            raise

    # --- names ------------------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"an answer key must be 64 lowercase hex characters (a sha256 digest), not {key!r}")
        return f"{self._root}/{key[:2]}/{key}{_SUFFIX}"

    def _file_uri(self, key: str) -> str:
        return f"{self._uri}/{key[:2]}/{key}{_SUFFIX}"


_stores: dict[str, AnswerStore] = {}
_stores_lock = threading.Lock()


def answer_store(location: str) -> AnswerStore:
    """The process's one `AnswerStore` for `location` (local paths compared once made absolute)."""
    resolved = _resolve(location)
    with _stores_lock:
        store = _stores.get(resolved)
        if store is None:
            store = _stores[resolved] = AnswerStore(resolved)
        return store


# --- helpers --------------------------------------------------------------------------------------

_ABSENT = object()


def check_answer_store(location: str) -> None:
    """Raise DistilflowUserError now, before any model request, unless answers can be stored at `location`.

    A location holding credentials (s3://key:secret@bucket) is refused without echoing them: a
    location is shown in logs and messages, so credentials belong in the environment.
    """
    parts = urllib.parse.urlsplit(location)
    if "@" in parts.netloc:
        shown = urllib.parse.urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
        raise DistilflowUserError(
            f"answer cache {shown}: the URI must not hold credentials; set them in the environment "
            "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or in the Secret block named by DISTILFLOW_S3_CREDENTIALS_BLOCK."
        )
    from storage.datasets import check_writable

    check_writable(f"{answer_store(location).location.rstrip('/')}/{_DIRECTORY}/")


def _resolve(location: str) -> str:
    if "://" in location:
        return location.rstrip("/") or location
    return str(Path(location).expanduser().resolve())


def _encode(answer: Any) -> bytes:
    document = {"answer": answer}
    try:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (e.g. from a JSON "\ud83d" escape) has no UTF-8 form; escaped, it round-trips.
        return json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _decode(data: bytes, where: str) -> Any:
    """The answer in a stored file, or _ABSENT (with a warning) if the file is not one we can read."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as e:  # not JSON, not UTF-8, or truncated
        reason = f"not valid JSON: {type(e).__name__}"
    else:
        if isinstance(document, dict) and "answer" in document:
            return document["answer"]
        reason = 'no "answer" field'
    _log.warning("answer cache: ignoring the unreadable file %s (%s, %d bytes); it counts as not stored "
                 "and is replaced by the next answer for its key.", where, reason, len(data))
    return _ABSENT


def _is_answer_name(name: str) -> bool:
    return name.endswith(_SUFFIX) and not name.startswith(".")


def _is_missing_object(error: BaseException) -> bool:
    """A missing object or prefix (a cache miss), as opposed to a missing bucket or another failure."""
    return (
        isinstance(error, FileNotFoundError)
        and _s3_error_code(error) in (None, "NoSuchKey", "404")
        and "bucket does not exist" not in str(error).lower()
    )
