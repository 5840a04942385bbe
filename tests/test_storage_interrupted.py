"""A writer killed with SIGKILL half way leaves the previous dataset at the same URI whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from distilflow.storage import DatasetWriter, filesystem, read_rows, write_rows

ROOT = Path(__file__).resolve().parents[1]

# Writes a new version slowly and says how far it got, so the test can kill it mid-write.
WRITER = textwrap.dedent(
    """
    import sys, time
    from distilflow.storage import DatasetWriter, write_rows

    how, uri = sys.argv[1], sys.argv[2]
    if how == "DatasetWriter":
        with DatasetWriter(uri) as writer:
            for index in range(100_000):
                writer.write_part(index, [{"version": 2, "part": index}])
                print("part", index, flush=True)
                time.sleep(0.02)
            writer.commit()
    else:
        def rows():
            for i in range(10_000_000):
                if i % 1000 == 0:
                    print("row", i, flush=True)
                    time.sleep(0.02)
                yield {"version": 2, "row": i, "text": "x" * 100}
        write_rows(uri, rows())
    """
)

OLD = [{"version": 1, "row": i} for i in range(5)]


def kill_mid_write(how: str, uri: str, after_lines: int) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, how, uri], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ),
    )
    try:
        for _ in range(after_lines):
            line = process.stdout.readline()
            assert line, "the writer ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(30)
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL


def names_under(root_uri: str) -> list[str]:
    fs, path = filesystem(root_uri)
    return sorted(name[len(path.rstrip("/")) + 1:] for name in fs.find(path))


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
    if request.param == "local":
        return str(tmp_path)
    return request.getfixturevalue("s3").uri("").rstrip("/")


@pytest.mark.parametrize("name", ["data.jsonl", "data.parquet"])
def test_killed_dataset_writer_leaves_the_previous_file(root, name):
    uri = f"{root}/{name}"
    write_rows(uri, OLD)
    kill_mid_write("DatasetWriter", uri, after_lines=4)

    assert list(read_rows(uri)) == OLD
    staged = [n for n in names_under(root) if n != name]
    assert staged and all(n.startswith(f".{name}.parts-") for n in staged)  # killed mid-write, hidden debris
    assert len(staged) >= 4

    # The next commit to this target removes the debris of the dead writer (same host, pid gone).
    with DatasetWriter(uri) as writer:
        writer.write_part(0, [{"version": 3}])
        writer.commit()
    assert list(read_rows(uri)) == [{"version": 3}]
    assert names_under(root) == [name]


def test_killed_dataset_writer_leaves_the_previous_directory_dataset(root):
    uri = f"{root}/dataset/"
    write_rows(uri, OLD)
    before = names_under(uri)
    kill_mid_write("DatasetWriter", uri, after_lines=4)

    assert list(read_rows(uri)) == OLD
    after = names_under(uri)
    assert set(before) < set(after)  # new, unlisted parts-<token>/ files; the old ones untouched
    assert sum(1 for n in after if n.endswith("_manifest.json")) == 1

    write_rows(uri, [{"version": 3}])  # the next version commits over the debris, and removes it
    assert list(read_rows(uri)) == [{"version": 3}]
    after_commit = names_under(uri)
    assert len(after_commit) == 2 and "_manifest.json" in after_commit  # the manifest and its one part


@pytest.mark.parametrize("name", ["data.jsonl", "data.parquet"])
def test_killed_write_rows_leaves_the_previous_file(root, name):
    uri = f"{root}/{name}"
    write_rows(uri, OLD)
    kill_mid_write("write_rows", uri, after_lines=3)  # 2,000+ rows written, nothing committed

    assert list(read_rows(uri)) == OLD
    debris = [n for n in names_under(root) if n != name]
    # Locally the temporary file is there, hidden; S3 shows an object only once an upload completes.
    assert all(n.startswith(f".{name}.tmp-") for n in debris)
    if not root.startswith("s3://"):
        assert debris
        with DatasetWriter(uri) as writer:  # a later flow's commit removes the dead writer's file
            writer.write_part(0, [{"version": 3}])
            writer.commit()
        assert names_under(root) == [name]
