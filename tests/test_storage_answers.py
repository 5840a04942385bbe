"""The answer cache's store (`distilflow.storage.answers`): one SQLite database locally, one object per answer
on S3 (a moto server on loopback)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading

import pytest

from distilflow.storage import AnswerStore, answer_store, check_answer_store
from distilflow.errors import DistilflowUserError



def key_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


ANSWERS = {
    key_of("dict"): {"generation": "hello", "usage": {"prompt_tokens": 3, "completion_tokens": 1}, "ok": True},
    key_of("list"): [1, 2.5, "three", None, {"nested": [[]]}],
    key_of("unicode"): "ünïcødé ✓ 日本語 🙂 \"quoted\" \\ back\nslash",
    key_of("surrogate"): {"text": "broken emoji \ud83d here ✓"},  # no UTF-8 form: stored escaped, not refused
    key_of("int"): 42,
    key_of("float"): -0.125,
    key_of("none"): None,
    key_of("empty"): "",
    key_of("large"): "A" * (1 << 20),  # ~1 MB, like a base64 image
}


@pytest.fixture(params=["local", "s3"])
def location(request, tmp_path):
    """A fresh store location: a local directory, or a prefix in a fresh S3 bucket."""
    if request.param == "local":
        return str(tmp_path / "cache")
    return request.getfixturevalue("s3").uri("runs/cache")


def is_local(location: str) -> bool:
    return "://" not in location


def database(location: str) -> str:
    return os.path.join(location, "answers.sqlite3")


def stored_blob(location: str, key: str) -> bytes | None:
    """The bytes stored for `key`, read behind the store's back (sqlite3 or the object itself)."""
    if is_local(location):
        with sqlite3.connect(database(location)) as connection:
            row = connection.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])
    from distilflow.storage import filesystem

    fs, path = filesystem(f"{location}/answers/{key[:2]}/{key}.json")
    return fs.cat_file(path) if fs.exists(path) else None


def write_raw(location: str, key: str, data: bytes) -> str:
    """Store raw bytes as the answer for `key` behind the store's back; return where the warning names it."""
    if is_local(location):
        connection = sqlite3.connect(database(location), timeout=10)
        try:
            with connection:
                connection.execute("INSERT OR REPLACE INTO answers (key, answer) VALUES (?, ?)", (key, data))
        finally:
            connection.close()
        return database(location)
    from distilflow.storage import filesystem

    uri = f"{location}/answers/{key[:2]}/{key}.json"
    fs, path = filesystem(uri)
    fs.pipe_file(path, data)
    return uri.split("://", 1)[1]


def nothing_stored_at(location: str, request) -> bool:
    if is_local(location):
        return not os.path.exists(location)
    s3 = request.getfixturevalue("s3")
    return s3.client().list_objects_v2(Bucket=s3.bucket).get("KeyCount", 0) == 0


def run_python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    """A new Python process running `code` with this checkout importable."""
    env = dict(os.environ)
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs,
    )


# --- both backends --------------------------------------------------------------------------------


def test_round_trip(location):
    store = AnswerStore(location)
    for key, answer in ANSWERS.items():
        store.put(key, answer)
    assert store.get_many(list(ANSWERS)) == ANSWERS
    assert AnswerStore(location).get_many(list(ANSWERS)) == ANSWERS  # another instance, same storage
    assert len(store) == len(ANSWERS)


def test_submit_many_round_trip(location):
    store = AnswerStore(location)
    future = store.submit_many(list(ANSWERS.items()))
    assert future.result(timeout=30) is None
    assert store.get_many(list(ANSWERS)) == ANSWERS
    assert store.submit_many([]).result(timeout=30) is None  # nothing to store: still resolves


def test_get_many_returns_only_stored_keys(location):
    store = AnswerStore(location)
    stored = {key_of(f"stored {i}"): f"answer {i}" for i in range(5)}
    missing = [key_of(f"missing {i}") for i in range(5)]
    store.submit_many(list(stored.items())).result(timeout=30)
    keys = [k for pair in zip(stored, missing) for k in pair] + [missing[0], next(iter(stored))]  # repeats too
    assert store.get_many(keys) == stored
    assert store.get_many(missing) == {}
    assert store.get_many([]) == {}


def test_overwrite_last_writer_wins(location):
    store = AnswerStore(location)
    key = key_of("overwritten")
    store.put(key, {"v": 1, "long": "x" * 1000})
    store.put(key, {"v": 2})
    assert store.get_many([key]) == {key: {"v": 2}}
    assert AnswerStore(location).get_many([key]) == {key: {"v": 2}}
    assert len(store) == 1


def test_len_counts_answers(location):
    store = AnswerStore(location)
    assert len(store) == 0  # nothing written yet: no error
    for i in range(7):
        store.put(key_of(f"len {i}"), i)
    store.put(key_of("len 0"), "again")
    assert len(store) == 7


@pytest.mark.parametrize("bad", [
    "", "abc", "A" * 64, key_of("x").upper(), key_of("x")[:63], key_of("x") + "0", key_of("x")[:62] + "/.",
    "../" + key_of("x")[3:], key_of("x")[:63] + "g", key_of("x") + "\n", 12345, None,
])
def test_invalid_keys_are_rejected_before_any_io(location, request, bad):
    store = AnswerStore(location)
    with pytest.raises(ValueError, match="64 lowercase hex"):
        store.put(bad, "answer")
    with pytest.raises(ValueError, match="64 lowercase hex"):
        store.submit_many([(key_of("fine"), "answer"), (bad, "answer")])  # raised now, not in the future
    with pytest.raises(ValueError, match="64 lowercase hex"):
        store.get_many([key_of("fine"), bad])
    assert store.backlog == 0
    assert nothing_stored_at(location, request)


def test_an_answer_that_is_not_json_fails_before_any_io(location, request):
    store = AnswerStore(location)
    with pytest.raises(TypeError):
        store.put(key_of("bad"), {"not json": object()})
    with pytest.raises(TypeError):
        store.submit_many([(key_of("fine"), 1), (key_of("bad"), {1, 2})])  # the whole call is refused
    assert store.backlog == 0
    assert nothing_stored_at(location, request)


@pytest.mark.parametrize("garbage", [
    b"\x00\xff\xfe garbage",
    b'{"answer": "trunc',  # cut short
    b'{"future_format": 1}',  # JSON without "answer"
    b'["answer"]',
    b"",
])
def test_an_unreadable_answer_counts_as_absent_with_a_warning(location, caplog, garbage):
    store = AnswerStore(location)
    good, bad = key_of("good"), key_of("bad")
    store.put(good, "fine")  # the database (or the prefix) exists
    where = write_raw(location, bad, garbage)
    with caplog.at_level(logging.WARNING, logger="distilflow.storage"):
        assert store.get_many([good, bad]) == {good: "fine"}
    warnings = [r for r in caplog.records if r.name == "distilflow.storage" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert bad in warnings[0].getMessage()
    assert where in warnings[0].getMessage()
    store.put(bad, "rewritten")  # the next answer replaces it
    assert store.get_many([bad]) == {bad: "rewritten"}
    assert stored_blob(location, bad) == b'{"answer":"rewritten"}'


def test_concurrent_submits_from_16_threads(location):
    store = AnswerStore(location)
    per_thread = 20 if is_local(location) else 6  # an S3 PUT on moto costs milliseconds
    answers = {key_of(f"concurrent {i}"): {"i": i, "text": f"answer {i} ✓"} for i in range(16 * per_thread)}
    items = list(answers.items())
    start = threading.Barrier(16)
    errors = []

    def worker(n):
        try:
            start.wait()
            mine = items[n::16]
            half = per_thread // 2
            for key, answer in mine[:half]:
                store.put(key, answer)
            futures = [store.submit_many(mine[i:i + 2]) for i in range(half, len(mine), 2)]
            for future in futures:
                future.result(timeout=30)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.backlog == 0
    assert store.get_many(list(answers)) == answers
    assert len(store) == 16 * per_thread


def test_readers_never_see_part_of_an_answer(location, caplog):
    store = AnswerStore(location)
    key = key_of("contended")
    versions = [{"writer": w, "payload": chr(ord("a") + w) * 200_000} for w in range(2)]
    puts = 40 if is_local(location) else 12
    store.put(key, versions[0])
    errors = []

    def writer(w):
        try:
            for _ in range(puts):
                store.put(key, versions[w])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    reads = 0
    with caplog.at_level(logging.WARNING, logger="distilflow.storage"):
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads) or reads < 20:
            assert store.get_many([key])[key] in versions  # present, whole, one of the two
            reads += 1
        for thread in threads:
            thread.join()
    assert errors == []
    assert [r for r in caplog.records if r.name == "distilflow.storage"] == []
    assert len(store) == 1


# --- submit_many, backlog -------------------------------------------------------------------------


def test_a_future_resolves_only_once_its_answers_are_readable(location):
    store = AnswerStore(location)
    other = AnswerStore(location)  # its own connections: sees only what is really stored
    rounds = 60 if is_local(location) else 12
    for i in range(rounds):  # one at a time
        key = key_of(f"one {i}")
        store.submit_many([(key, i)]).result(timeout=30)
        assert store.get_many([key]) == {key: i}
        assert other.get_many([key]) == {key: i}
    assert store.backlog == 0

    batches = [[(key_of(f"many {i} {j}"), [i, j]) for j in range(3)] for i in range(rounds)]
    futures = [store.submit_many(batch) for batch in batches]  # many queued at once
    for future, batch in zip(futures, batches):
        future.result(timeout=30)
        assert other.get_many([key for key, _ in batch]) == dict(batch)
    assert all(future.done() for future in futures)
    assert store.backlog == 0  # every future resolved: nothing is waiting
    assert len(store) == rounds * 4


def test_a_key_submitted_twice_ends_with_the_last_value(location):
    store = AnswerStore(location)
    keys = [key_of(f"twice {i}") for i in range(20)]
    futures = []
    for i, key in enumerate(keys):
        futures.append(store.submit_many([(key, "first")]))
        futures.append(store.submit_many([(key, {"second": i})]))  # quick succession: same or next write
    same_call = key_of("twice in one call")
    futures.append(store.submit_many([(same_call, 1), (same_call, 2), (same_call, 3)]))
    for future in futures:
        future.result(timeout=30)
    assert store.backlog == 0
    assert store.get_many(keys) == {key: {"second": i} for i, key in enumerate(keys)}
    assert store.get_many([same_call]) == {same_call: 3}
    assert len(store) == len(keys) + 1


def test_backlog_counts_answers_until_they_are_stored(tmp_path):
    """Held up by another connection's write lock, answers wait in the backlog; released, they are stored."""
    location = str(tmp_path / "cache")
    store = AnswerStore(location)
    store.put(key_of("first"), 0)  # the database exists
    assert store.backlog == 0
    blocker = sqlite3.connect(database(location), isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # what another process's long commit looks like
        items = [(key_of(f"held {i}"), i) for i in range(10)]
        futures = [store.submit_many(items[:4]), store.submit_many(items[4:])]
        assert store.backlog == 10
        assert not any(future.done() for future in futures)
        assert store.get_many([key for key, _ in items]) == {}  # readers are not blocked, and see nothing yet
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    for future in futures:
        future.result(timeout=30)
    assert store.backlog == 0
    assert store.get_many([key for key, _ in items]) == dict(items)


def test_a_cancelled_future_does_not_stop_the_writer(tmp_path):
    """asyncio.wrap_future cancels the concurrent future when its awaiting task is cancelled."""
    location = str(tmp_path / "cache")
    store = AnswerStore(location)
    store.put(key_of("first"), 0)
    blocker = sqlite3.connect(database(location), isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # hold the writer so the future is still pending
        cancelled = store.submit_many([(key_of("cancelled"), 1)])
        kept = store.submit_many([(key_of("kept"), 2)])
        assert cancelled.cancel()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    kept.result(timeout=10)
    store.put(key_of("later"), 3)  # the writer is still there
    assert store.get_many([key_of("kept"), key_of("later")]) == {key_of("kept"): 2, key_of("later"): 3}
    assert store.backlog == 0


# --- instances ------------------------------------------------------------------------------------


def test_answer_store_is_one_instance_per_resolved_location(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    store = answer_store("x")
    assert store.location == str(tmp_path.resolve() / "x")
    assert answer_store(str(tmp_path / "x")) is store
    assert answer_store("./x/") is store
    assert answer_store("~/x") is store
    assert answer_store("y") is not store

    results = []
    start = threading.Barrier(16)

    def get():
        start.wait()
        results.append(answer_store("shared-by-threads"))

    threads = [threading.Thread(target=get) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 16 and all(result is results[0] for result in results)


def test_answer_store_keeps_a_uri_as_given(s3):
    store = answer_store(s3.uri("cache/"))
    assert store.location == s3.uri("cache")
    assert answer_store(s3.uri("cache")) is store


def test_check_answer_store_accepts_a_usable_location(tmp_path, s3):
    check_answer_store(str(tmp_path / "new" / "cache"))
    assert os.path.isfile(tmp_path / "new" / "cache" / "answers.sqlite3")
    check_answer_store(s3.uri("checked"))
    assert s3.client().list_objects_v2(Bucket=s3.bucket).get("KeyCount", 0) == 0  # its probe is gone


def test_credentials_in_a_uri_are_refused_without_being_shown():
    with pytest.raises(DistilflowUserError) as error:
        check_answer_store("s3://AKIAEXAMPLEKEY:sEcReTvAlUe123@bucket/cache")
    message = str(error.value)
    assert "must not hold credentials" in message
    assert "s3://***@bucket/cache" in message
    assert "AKIAEXAMPLEKEY" not in message and "sEcReTvAlUe123" not in message


# --- local: one SQLite database -------------------------------------------------------------------


def test_local_layout_is_one_database_holding_the_wrapper_document(tmp_path):
    location = str(tmp_path / "cache")
    store = AnswerStore(location)
    key, surrogate = key_of("format"), key_of("surrogate")
    store.put(key, ["é", 1.5, None, {"text": "ünïcødé ✓"}])
    store.put(surrogate, "broken \ud83d")
    assert os.path.isfile(database(location))
    assert set(os.listdir(location)) <= {"answers.sqlite3", "answers.sqlite3-wal", "answers.sqlite3-shm"}
    data = stored_blob(location, key)
    assert data == '{"answer":["é",1.5,null,{"text":"ünïcødé ✓"}]}'.encode()
    assert json.loads(data) == {"answer": ["é", 1.5, None, {"text": "ünïcødé ✓"}]}
    assert stored_blob(location, surrogate) == b'{"answer":"broken \\ud83d"}'  # escaped: valid UTF-8
    with sqlite3.connect(database(location)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 2


_WRITER = r"""
import hashlib, sys
from distilflow.storage import AnswerStore

who = sys.argv[1]
key = lambda text: hashlib.sha256(text.encode()).hexdigest()
for line in sys.stdin:  # one round per line: a fresh location, written at the same time as the other process
    location, count = line.rstrip("\n").split("\t")
    store = AnswerStore(location)
    for i in range(int(count)):
        store.put(key(f"shared {i}"), {"who": who, "i": i})  # the same keys as the other process
        if i % 2:
            store.submit_many([(key(f"{who} {i}"), i), (key(f"shared {i}"), {"who": who, "i": i})]).result()
        else:
            store.put(key(f"{who} {i}"), i)
    print("done", flush=True)
"""


def test_two_processes_write_one_location_at_the_same_time(tmp_path):
    """Fresh locations, so both processes also create the database together; no "database is locked"."""
    rounds = [(str(tmp_path / "big"), 400)] + [(str(tmp_path / f"fresh {r}"), 5) for r in range(15)]
    writers = {who: run_python(_WRITER, who) for who in ("a", "b")}
    try:
        for location, count in rounds:
            for process in writers.values():
                process.stdin.write(f"{location}\t{count}\n")
                process.stdin.flush()
            for who, process in writers.items():
                line = process.stdout.readline()
                if line != "done\n":
                    process.kill()
                    pytest.fail(f"writer {who} failed in {location}:\n{process.communicate()[1][-3000:]}")
        for process in writers.values():
            _, stderr = process.communicate(timeout=30)  # end of input: the writer exits
            assert process.returncode == 0, stderr
            assert "locked" not in stderr
    finally:
        for process in writers.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    for location, count in rounds:
        store = AnswerStore(location)
        shared = store.get_many([key_of(f"shared {i}") for i in range(count)])
        assert len(shared) == count
        for i in range(count):  # whole, and one of the two writers' answers for this key
            assert shared[key_of(f"shared {i}")] in ({"who": "a", "i": i}, {"who": "b", "i": i})
        for who in ("a", "b"):
            assert store.get_many([key_of(f"{who} {i}") for i in range(count)]) == {
                key_of(f"{who} {i}"): i for i in range(count)}
        assert len(store) == 3 * count


_KILLED = r"""
import hashlib, sys
from distilflow.storage import AnswerStore

key = lambda text: hashlib.sha256(text.encode()).hexdigest()
store = AnswerStore(sys.argv[1])
count = int(sys.argv[2])
for i in range(count - 10):
    store.put(key(f"kept {i}"), {"i": i, "text": "✓" * 100})
store.submit_many([(key(f"kept {i}"), {"i": i, "text": "✓" * 100}) for i in range(count - 10, count)]).result()
print("stored", flush=True)
sys.stdin.read()  # killed here
"""

_READER = r"""
import hashlib, json, sys
from distilflow.storage import AnswerStore

key = lambda text: hashlib.sha256(text.encode()).hexdigest()
store = AnswerStore(sys.argv[1])
count = int(sys.argv[2])
found = store.get_many([key(f"kept {i}") for i in range(count)])
print(json.dumps({"found": sorted(answer["i"] for answer in found.values()), "len": len(store)}))
"""


def test_answers_stored_before_a_kill_survive_it(tmp_path):
    location, count = str(tmp_path / "cache"), 200
    writer = run_python(_KILLED, location, str(count))
    try:
        line = writer.stdout.readline()
        assert line == "stored\n", writer.communicate(timeout=30)[1][-3000:]
        writer.send_signal(signal.SIGKILL)  # no cleanup, no checkpoint, no close
        writer.communicate(timeout=30)
        assert writer.returncode == -signal.SIGKILL
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    reader = run_python(_READER, location, str(count))
    stdout, stderr = reader.communicate(timeout=60)
    assert reader.returncode == 0, stderr
    assert json.loads(stdout) == {"found": list(range(count)), "len": count}


def test_a_location_under_a_regular_file_is_a_user_error_naming_it(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    for location in (str(tmp_path / "file"), str(tmp_path / "file" / "cache")):
        store = AnswerStore(location)
        for attempt in (store.check, lambda: check_answer_store(location)):
            with pytest.raises(DistilflowUserError) as error:
                attempt()
            assert location in str(error.value)
            assert "not a directory" in str(error.value)
        with pytest.raises(DistilflowUserError, match="not a directory"):
            store.put(key_of("k"), 1)
        future = store.submit_many([(key_of("k"), 1)])
        with pytest.raises(DistilflowUserError, match="not a directory"):
            future.result(timeout=30)
        assert store.get_many([key_of("k")]) == {}  # reading creates nothing and finds nothing
        assert store.backlog == 0
    assert (tmp_path / "file").read_text() == "not a directory"


# --- object stores: one object per answer ---------------------------------------------------------


def test_object_layout_and_stored_bytes(s3):
    location = s3.uri("runs/cache")
    store = AnswerStore(location)
    key = key_of("layout")
    store.put(key, {"text": "ünïcødé ✓", "n": [1, 2.5, None]})
    objects = s3.client().list_objects_v2(Bucket=s3.bucket)["Contents"]
    assert [o["Key"] for o in objects] == [f"runs/cache/answers/{key[:2]}/{key}.json"]
    body = s3.client().get_object(Bucket=s3.bucket, Key=objects[0]["Key"])["Body"].read()
    assert body == '{"answer":{"text":"ünïcødé ✓","n":[1,2.5,null]}}'.encode()


def test_a_location_with_glob_characters_is_read_literally(s3):
    store = AnswerStore(s3.uri("runs[1]/what?/cache*"))
    key = key_of("glob")
    store.put(key, "literal")
    AnswerStore(s3.uri("runs1/whatx/cache")).put(key_of("elsewhere"), "matched by the pattern, not the name")
    assert store.get_many([key, key_of("absent"), key_of("elsewhere")]) == {key: "literal"}
    assert len(store) == 1


def test_a_missing_bucket_is_a_user_error_naming_the_uri(s3):
    uri = f"s3://{s3.bucket}-missing/cache"
    store = AnswerStore(uri)
    assert store.get_many([]) == {}  # no storage touched
    key = key_of("nowhere")
    future = store.submit_many([(key, "a")])
    for attempt in (lambda: store.put(key, "a"), future.result, lambda: store.get_many([key]), lambda: len(store),
                    store.check, lambda: check_answer_store(uri)):
        with pytest.raises(DistilflowUserError) as error:
            attempt()
        message = str(error.value)
        assert message.startswith(uri)
        assert f"bucket '{s3.bucket}-missing' does not exist" in message
    assert store.backlog == 0


def test_an_unreachable_endpoint_is_a_user_error_not_a_miss(monkeypatch):
    """get_many must not mistake a storage failure for "nothing cached" (and then re-ask every model)."""
    import socket
    import time

    from distilflow.storage.filesystems import clear_cache

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    clear_cache()
    store = AnswerStore("s3://bucket/cache")
    key = key_of("unreachable")
    started = time.monotonic()
    try:
        future = store.submit_many([(key, 1)])
        for attempt in (lambda: store.get_many([key, key_of("other")]), lambda: store.put(key, 1), future.result,
                        lambda: len(store)):
            with pytest.raises(DistilflowUserError) as error:
                attempt()
            assert str(error.value).startswith("s3://bucket/cache/answers")
            assert f"cannot reach the S3 endpoint 127.0.0.1:{port}" in str(error.value)
    finally:
        clear_cache()
    assert store.backlog == 0
    assert time.monotonic() - started < 15
