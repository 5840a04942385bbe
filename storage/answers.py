"""The persistent store of the answer cache: model answers by key, at a local path or any fsspec URI.

The key is a sha256 hex digest made by the caller (`distilflow.answers`); the answer is any JSON value.

* Locally, one SQLite database, `<location>/answers.sqlite3` (WAL mode): a lookup is an indexed
  read, thousands of answers commit in one transaction, a killed process loses no committed
  answer, and two processes on the same machine can share it (SQLite serializes their commits).
  Not for a network filesystem shared by several machines: use an object store for that.
* On object stores (s3:// and any other fsspec URI), one object per answer,
  `<location>/answers/<key[:2]>/<key>.json`, holding `{"answer": ...}`: a lookup needs no index
  (the key is the name), every write is one whole-object PUT, and workers on many machines share
  it without coordinating (the last writer of a key wins; answers for a key are interchangeable).
  The cost is one PUT per answer.

Writes go through one writer thread per store that takes every answer waiting and writes them
together (one transaction, or one concurrent batch of PUTs), so the cost per answer stays small
under load; `submit_many` returns a future that resolves once its answers are stored, and
`backlog` says how many are still waiting (the answer cache stops asking while it is long).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import json
import logging
import os
import queue
import re
import sqlite3
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import orjson

from distilflow.storage.errors import _s3_error_code, storage_errors
from distilflow.storage.filesystems import filesystem, is_local
from distilflow.errors import DistilflowUserError

__all__ = ["AnswerStore", "answer_store", "check_answer_store"]

_log = logging.getLogger("distilflow.storage")

_KEY = re.compile(r"[0-9a-f]{64}")
_GLOB = re.compile(r"[*?\[]")  # what fsspec's path expansion treats as a pattern (glob.has_magic)
_DIRECTORY = "answers"
_DATABASE = "answers.sqlite3"
_SUFFIX = ".json"
_ABSENT = object()
_TIMEOUT = 60  # seconds a connection waits for another one's lock


class AnswerStore:
    """Answers by key at `location` (a local directory or an fsspec URI). Thread-safe.

    Use `answer_store(location)` to share one instance (and its writer thread) per location.
    """

    def __init__(self, location: str):
        self.location = _resolve(location)
        fs, _ = filesystem(self.location)
        self._backend = _Sqlite(self.location) if is_local(fs) else _Objects(self.location)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()
        self._backlog = 0

    def __repr__(self) -> str:
        return f"AnswerStore({self.location!r})"

    def check(self) -> None:
        """Raise DistilflowUserError unless answers can be read and written here."""
        self._backend.check()

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """key -> answer for the keys that are stored; missing or unreadable ones are absent."""
        wanted = list(dict.fromkeys(_checked(key) for key in keys))
        if not wanted:
            return {}
        found = {}
        for key, data in self._backend.read(wanted).items():
            answer = _decode(data, self._backend.where(key))
            if answer is not _ABSENT:
                found[key] = answer
        return found

    def submit_many(self, items: list[tuple[str, Any]]) -> concurrent.futures.Future:
        """Queue answers for writing; the future resolves once they are stored (or holds the error)."""
        encoded = [(_checked(key), _encode(answer)) for key, answer in items]
        done: concurrent.futures.Future = concurrent.futures.Future()
        self._start_writer()
        with self._lock:
            self._backlog += len(encoded)
        self._queue.put((encoded, done))
        return done

    def put(self, key: str, answer: Any) -> None:
        """Store one answer, whole or not at all; an answer already stored under `key` is replaced."""
        self.submit_many([(key, answer)]).result()

    @property
    def backlog(self) -> int:
        """Answers queued for writing and not yet stored."""
        return self._backlog

    def __len__(self) -> int:
        """How many answers are stored (for tests and reports, not for hot paths)."""
        return len(self._backend.keys())

    def keys(self) -> list[str]:
        """The keys of every stored answer (a listing: for tests and reports, not for hot paths)."""
        return self._backend.keys()

    def _start_writer(self) -> None:
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    self._writer = threading.Thread(target=self._write_forever, name="distilflow-answer-writer", daemon=True)
                    self._writer.start()

    def _write_forever(self) -> None:
        while True:
            groups = [self._queue.get()]
            count = len(groups[0][0])
            while count < 5000:  # all that queued up meanwhile: one write
                try:
                    groups.append(self._queue.get_nowait())
                except queue.Empty:
                    break
                count += len(groups[-1][0])
            latest = {key: data for items, _ in groups for key, data in items}  # a key written twice: the last
            error: BaseException | None = None
            try:
                self._backend.write(list(latest.items()))
            except BaseException as e:  # noqa: BLE001 - handed to everyone waiting for these answers
                error = e
            # before the futures resolve: whoever sees them resolved sees a backlog without them
            with self._lock:
                self._backlog -= count
            for _, done in groups:
                # False for a future its waiter cancelled (asyncio.wrap_future does when the awaiting
                # task is cancelled): nobody to tell, and setting it would raise and end this thread.
                if done.set_running_or_notify_cancel():
                    if error is None:
                        done.set_result(None)
                    else:
                        done.set_exception(error)


def _private_dirs(path: str) -> None:
    """Make `path` and any missing parent, each 0700: answers hold prompts and outputs, this user's only."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            os.mkdir(directory, 0o700)


_creating = threading.Lock()


def _create_private(path: str) -> None:
    """Create the database file 0600 before SQLite opens it (its -wal and -shm files take its mode).

    Only while it does not exist: closing any descriptor of a file drops every POSIX lock this
    process holds on it, so opening and closing it beside a live connection would break SQLite's
    locking ("disk I/O error").
    """
    if os.path.exists(path):
        return
    with _creating, contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


class _Sqlite:
    """Answers in one local SQLite database (WAL): indexed lookups, grouped commits."""

    def __init__(self, location: str) -> None:
        self.path = os.path.join(location, _DATABASE)
        self._local = threading.local()

    def where(self, key: str) -> str:
        return f"{self.path} (key {key})"

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            with storage_errors(self.path, "write"):
                _private_dirs(os.path.dirname(self.path))
                _create_private(self.path)
                connection = sqlite3.connect(self.path, timeout=_TIMEOUT, isolation_level=None)
                try:
                    _set_up(connection)
                except BaseException:
                    connection.close()
                    raise
            self._local.connection = connection
        return connection

    def check(self) -> None:
        try:
            self._connection().execute("SELECT 1 FROM answers LIMIT 1").fetchall()
        except sqlite3.Error as e:
            raise DistilflowUserError(
                f"{self.path}: cannot use the answer cache here ({e}); point result_storage (--run.result-storage, "
                "$DISTILFLOW_RESULTS) at a writable local directory or an s3:// URI."
            ) from None

    def read(self, keys: list[str]) -> dict[str, bytes]:
        if getattr(self._local, "connection", None) is None and not os.path.exists(self.path):
            return {}  # nothing stored yet: reading creates nothing
        connection, found = self._connection(), {}
        with storage_errors(self.path, "read"):
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                rows = connection.execute(
                    f"SELECT key, answer FROM answers WHERE key IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
                found.update(rows)
        return found

    def write(self, items: list[tuple[str, bytes]]) -> None:
        connection = self._connection()
        with storage_errors(self.path, "write"):
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany("INSERT OR REPLACE INTO answers (key, answer) VALUES (?, ?)", items)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:  # never leave the writer's connection mid-transaction
                    with contextlib.suppress(sqlite3.Error):
                        connection.execute("ROLLBACK")
                raise

    def keys(self) -> list[str]:
        if not os.path.exists(self.path):
            return []
        with storage_errors(self.path, "read"):
            return [key for (key,) in self._connection().execute("SELECT key FROM answers")]


def _set_up(connection: sqlite3.Connection) -> None:
    """WAL mode and the table, on a connection just opened.

    Switching a new database to WAL fails at once with "database is locked", without waiting
    for the busy timeout, while another connection has it open (another process creating it at
    the same moment): retried here until the timeout, as SQLite would for any other lock.
    """
    deadline = time.monotonic() + _TIMEOUT
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # a killed process loses no commit
            connection.execute(
                "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer BLOB NOT NULL) WITHOUT ROWID"
            )
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class _Objects:
    """One object per answer under `<location>/answers/` on an fsspec store (s3:// included)."""

    def __init__(self, location: str) -> None:
        self._uri = f"{location.rstrip('/')}/{_DIRECTORY}"
        self._root = filesystem(self._uri)[1].rstrip("/")

    def where(self, key: str) -> str:
        return f"{self._uri}/{key[:2]}/{key}{_SUFFIX}"

    def _path(self, key: str) -> str:
        return f"{self._root}/{key[:2]}/{key}{_SUFFIX}"

    def check(self) -> None:
        from distilflow.storage.datasets import check_writable

        check_writable(f"{self._uri}/")

    def read(self, keys: list[str]) -> dict[str, bytes]:
        paths = {self._path(key): key for key in keys}
        fs, _ = filesystem(self._uri)  # looked up each time: clearing cached S3 settings takes effect
        with storage_errors(self._uri, "read"):
            # One call for the whole list: s3fs fetches the objects concurrently. on_error="return"
            # rather than "omit": a missing object is a miss, but a missing bucket, rejected
            # credentials or an unreachable endpoint must reach the user, not look like misses.
            if _GLOB.search(self._root):
                # fs.cat would read "[", "*" or "?" in the location as a pattern: read the paths literally.
                results = dict(zip(paths, fs.cat_ranges(list(paths), None, None, on_error="return")))
            else:
                results = fs.cat(list(paths), on_error="return")
            for value in results.values():
                if isinstance(value, BaseException) and not _is_missing_object(value):
                    raise value
        return {paths[p]: v for p, v in results.items() if p in paths and not isinstance(v, BaseException)}

    def write(self, items: list[tuple[str, bytes]]) -> None:
        fs, _ = filesystem(self._uri)
        with storage_errors(self._uri, "write"):
            # one whole-object PUT per answer (an object store shows it whole or not at all), all
            # of them at once
            fs.pipe({self._path(key): data for key, data in items})

    def keys(self) -> list[str]:
        fs, _ = filesystem(self._uri)
        with storage_errors(self._uri, "read"):
            try:
                names = fs.find(self._root, withdirs=False)
            except FileNotFoundError as e:
                if not _is_missing_object(e):
                    raise
                return []
        names = [name.rsplit("/", 1)[-1] for name in names]
        return [name[: -len(_SUFFIX)] for name in names if _is_answer_name(name)]


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
    answer_store(location).check()


# --- helpers --------------------------------------------------------------------------------------


def _checked(key: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"an answer key must be 64 lowercase hex characters (a sha256 digest), not {key!r}")
    return key


def _resolve(location: str) -> str:
    if "://" in location:
        return location.rstrip("/") or location
    return _resolve_local(os.path.expanduser(location), os.getcwd())


@functools.lru_cache(maxsize=64)
def _resolve_local(location: str, cwd: str) -> str:  # every batch asks: resolving walks the path
    return str(Path(cwd, location).resolve())


def _encode(answer: Any) -> bytes:
    document = {"answer": answer}
    try:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (e.g. from a JSON "\ud83d" escape) has no UTF-8 form; escaped, it round-trips.
        return json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _decode(data: bytes, where: str) -> Any:
    """The stored answer, or _ABSENT (with a warning) if it is not one we can read."""
    try:
        document = orjson.loads(data)  # a third of json.loads' time: every answer of a cached re-run is read
    except orjson.JSONDecodeError:
        try:  # what orjson refuses and json reads: NaN / Infinity in an answer's numbers, escaped lone surrogates
            document = json.loads(data)
        except (ValueError, RecursionError) as e:  # not JSON, not UTF-8, or truncated
            reason = f"not valid JSON: {type(e).__name__}"
            document = _ABSENT
    if document is not _ABSENT:
        if isinstance(document, dict) and "answer" in document:
            return document["answer"]
        reason = 'no "answer" field'
    _log.warning("answer cache: ignoring the unreadable answer at %s (%s, %d bytes); it counts as not stored "
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


def flush_all(timeout: float) -> bool:
    """Wait, at most `timeout` seconds, until every answer on its way to a store is stored.

    For a run that ends abruptly (a signal, a lost Prefect API): a batch that stops hands its
    answers to the store within `distilflow.answers.FLUSH_SECONDS`, and the writer thread,
    a daemon, would not outlive the process. False if answers were still waiting at the timeout.
    """
    from distilflow.answers import FLUSH_SECONDS

    deadline = time.monotonic() + timeout
    time.sleep(2 * FLUSH_SECONDS)  # the batches' last answers reach their stores' queues
    while time.monotonic() < deadline:
        with _stores_lock:
            waiting = sum(store.backlog for store in _stores.values())
        if not waiting:
            return True
        time.sleep(0.01)
    return False
