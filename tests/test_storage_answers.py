"""The answer cache's store (`storage.answers`), on local disk and on S3 (a moto server on loopback)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading

import pytest

from storage import AnswerStore, answer_store
from tasks.errors import DistilflowUserError


def key_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


ANSWERS = {
    key_of("dict"): {"generation": "hello", "usage": {"prompt_tokens": 3, "completion_tokens": 1}, "ok": True},
    key_of("list"): [1, 2.5, "three", None, {"nested": [[]]}],
    key_of("unicode"): "ünïcødé ✓ 日本語 🙂 \"quoted\" \\ back\nslash",
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


def stored_names(store: AnswerStore) -> list[str]:
    """Every file under `<location>/answers`, hidden ones included, relative to it."""
    from storage import filesystem

    fs, root = filesystem(store.location + "/answers")
    return sorted(name[len(root.rstrip("/")) + 1:] for name in fs.find(root, withdirs=False))


def write_raw(store: AnswerStore, key: str, data: bytes) -> str:
    """Put raw bytes where the answer for `key` lives; return that file's path or URI."""
    from storage import filesystem

    uri = f"{store.location}/answers/{key[:2]}/{key}.json"
    fs, path = filesystem(uri)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(path, data)
    return uri


def test_round_trip(location):
    store = AnswerStore(location)
    for key, answer in ANSWERS.items():
        store.put(key, answer)
    assert store.get_many(list(ANSWERS)) == ANSWERS
    assert AnswerStore(location).get_many(list(ANSWERS)) == ANSWERS  # another instance, same files
    assert len(store) == len(ANSWERS)


def test_layout_and_format(location):
    store = AnswerStore(location)
    key = key_of("layout")
    store.put(key, {"text": "ünïcødé ✓", "n": [1, 2]})
    assert stored_names(store) == [f"{key[:2]}/{key}.json"]
    from storage import filesystem

    fs, path = filesystem(f"{location}/answers/{key[:2]}/{key}.json")
    assert fs.cat_file(path) == '{"answer":{"text":"ünïcødé ✓","n":[1,2]}}'.encode()


def test_get_many_returns_only_stored_keys(location):
    store = AnswerStore(location)
    stored = {key_of(f"stored {i}"): f"answer {i}" for i in range(5)}
    missing = [key_of(f"missing {i}") for i in range(5)]
    for key, answer in stored.items():
        store.put(key, answer)
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
def test_invalid_keys_are_rejected_before_any_io(tmp_path, bad):
    store = AnswerStore(str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="64 lowercase hex"):
        store.put(bad, "answer")
    with pytest.raises(ValueError, match="64 lowercase hex"):
        store.get_many([key_of("fine"), bad])
    assert not (tmp_path / "cache").exists()


def test_an_answer_that_is_not_json_fails_before_any_io(tmp_path):
    store = AnswerStore(str(tmp_path / "cache"))
    with pytest.raises(TypeError):
        store.put(key_of("bad"), {"not json": object()})
    assert not (tmp_path / "cache").exists()


def test_lone_surrogates_round_trip(tmp_path):
    """A string with no UTF-8 form (a lone surrogate from a JSON escape) is stored escaped, not refused."""
    store = AnswerStore(str(tmp_path / "cache"))
    key = key_of("surrogate")
    store.put(key, {"text": "broken emoji \ud83d here ✓"})
    assert store.get_many([key]) == {key: {"text": "broken emoji \ud83d here ✓"}}


@pytest.mark.parametrize("garbage", [
    b"\x00\xff\xfe garbage",
    b'{"answer": "trunc',  # cut short by a crash on a filesystem without atomic renames
    b'{"future_format": 1}',
    b'["answer"]',
    b"",
])
def test_an_unreadable_file_counts_as_absent_with_a_warning(location, caplog, garbage):
    store = AnswerStore(location)
    good, bad = key_of("good"), key_of("bad")
    store.put(good, "fine")
    uri = write_raw(store, bad, garbage)
    with caplog.at_level(logging.WARNING, logger="distilflow.storage"):
        assert store.get_many([good, bad]) == {good: "fine"}
    warnings = [r for r in caplog.records if r.name == "distilflow.storage" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert bad in warnings[0].getMessage()
    assert uri.split("://", 1)[-1] in warnings[0].getMessage()
    store.put(bad, "rewritten")  # the next answer replaces it
    assert store.get_many([bad]) == {bad: "rewritten"}


def test_concurrent_puts_from_16_threads(location):
    store = AnswerStore(location)
    answers = {key_of(f"concurrent {i}"): {"i": i, "text": f"answer {i} ✓"} for i in range(200)}
    items = list(answers.items())
    start = threading.Barrier(16)
    errors = []

    def worker(n):
        try:
            start.wait()
            for key, answer in items[n::16]:
                store.put(key, answer)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.get_many(list(answers)) == answers
    assert len(store) == 200


def test_two_writers_of_one_key_never_leave_an_unreadable_file(tmp_path, caplog):
    store = AnswerStore(str(tmp_path / "cache"))
    key = key_of("contended")
    versions = [{"writer": w, "payload": chr(ord("a") + w) * 200_000} for w in range(2)]
    store.put(key, versions[0])
    errors = []

    def writer(w):
        try:
            for _ in range(150):
                store.put(key, versions[w])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    reads = 0
    with caplog.at_level(logging.WARNING, logger="distilflow.storage"):
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads) or reads < 50:
            assert store.get_many([key])[key] in versions  # present, whole, one of the two
            reads += 1
        for thread in threads:
            thread.join()
    assert errors == []
    assert [r for r in caplog.records if r.name == "distilflow.storage"] == []
    assert store.get_many([key])[key] in versions
    assert stored_names(store) == [f"{key[:2]}/{key}.json"]


def test_no_temporary_files_are_left_locally(tmp_path):
    store = AnswerStore(str(tmp_path / "cache"))
    keys = [key_of(f"tidy {i}") for i in range(50)]
    for key in keys:
        store.put(key, key)
        store.put(key, key + "!")  # replacing too
    names = []
    for directory, _, files in os.walk(tmp_path):
        names += [os.path.relpath(os.path.join(directory, name), tmp_path / "cache" / "answers") for name in files]
    assert sorted(names) == sorted(f"{key[:2]}/{key}.json" for key in keys)
    assert not [name for name in names if os.path.basename(name).startswith(".")]


def test_a_shard_directory_removed_behind_the_store_is_recreated(tmp_path):
    store = AnswerStore(str(tmp_path / "cache"))
    key = key_of("recreated")
    store.put(key, 1)
    os.remove(tmp_path / "cache" / "answers" / key[:2] / f"{key}.json")
    os.rmdir(tmp_path / "cache" / "answers" / key[:2])
    store.put(key, 2)
    assert store.get_many([key]) == {key: 2}


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


def test_a_missing_bucket_is_a_user_error_naming_the_uri(s3):
    uri = f"s3://{s3.bucket}-missing/cache"
    store = AnswerStore(uri)
    assert store.get_many([]) == {}  # no storage touched
    key = key_of("nowhere")
    for attempt in (lambda: store.put(key, "a"), lambda: store.get_many([key]), lambda: len(store)):
        with pytest.raises(DistilflowUserError) as error:
            attempt()
        message = str(error.value)
        assert message.startswith(uri + "/answers")
        assert f"bucket '{s3.bucket}-missing' does not exist" in message


def test_a_location_that_is_a_file_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    store = AnswerStore(str(tmp_path / "file"))
    with pytest.raises(DistilflowUserError, match="not a directory"):
        store.put(key_of("k"), 1)
    with pytest.raises(DistilflowUserError, match="not a directory"):
        store.get_many([key_of("k")])


def test_stored_bytes_are_exactly_the_wrapper_document(tmp_path):
    store = AnswerStore(str(tmp_path / "cache"))
    key = key_of("format")
    store.put(key, ["é", 1.5, None])
    data = (tmp_path / "cache" / "answers" / key[:2] / f"{key}.json").read_bytes()
    assert data == b'{"answer":["\xc3\xa9",1.5,null]}'
    assert json.loads(data) == {"answer": ["é", 1.5, None]}


def test_an_unreachable_endpoint_is_a_user_error_not_a_miss(monkeypatch):
    """get_many must not mistake a storage failure for "nothing cached" (and then re-ask every model)."""
    import socket
    import time

    from storage.filesystems import clear_cache

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
        for attempt in (lambda: store.get_many([key, key_of("other")]), lambda: store.put(key, 1), lambda: len(store)):
            with pytest.raises(DistilflowUserError) as error:
                attempt()
            assert str(error.value).startswith("s3://bucket/cache/answers")
            assert f"cannot reach the S3 endpoint 127.0.0.1:{port}" in str(error.value)
    finally:
        clear_cache()
    assert time.monotonic() - started < 15


def test_a_location_with_glob_characters_is_read_literally(s3):
    store = AnswerStore(s3.uri("runs[1]/what?/cache*"))
    key = key_of("glob")
    store.put(key, "literal")
    assert store.get_many([key, key_of("absent")]) == {key: "literal"}
    assert len(store) == 1
