"""Datasets and images through `storage`, on local disk and on S3 (a moto server on loopback)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading

import pytest

from distilflow.storage import (
    DatasetWriter,
    check_readable,
    check_writable,
    read_rows,
    save_image,
    write_rows,
)
from distilflow.errors import DistilflowUserError

ROWS = [
    {"instruction": "q0", "generation": "a0", "tags": ["x", "y"], "meta": {"n": 0, "inner": {"ok": True}}},
    {"instruction": "q1", "generation": None, "tags": [], "meta": {"n": 1, "inner": {"ok": False}}},
    {"instruction": "q2 ünïcødé ✓", "generation": "a2", "tags": ["z"], "meta": {"n": 2, "inner": {"ok": True}}},
]


@pytest.fixture(params=["local", "s3"])
def where(request, tmp_path):
    """A function that makes a location under a fresh root: a local directory or an S3 bucket."""
    if request.param == "local":
        return lambda path: str(tmp_path / path) + ("/" if path.endswith("/") else "")
    return request.getfixturevalue("s3").uri


def listing(where_root: str) -> list[str]:
    from distilflow.storage import filesystem

    fs, path = filesystem(where_root)
    return sorted(name[len(path.rstrip("/")) + 1:] for name in fs.find(path, withdirs=False))


@pytest.mark.parametrize("name", ["data.jsonl", "data.parquet", "dataset/"])
def test_rows_round_trip(where, name):
    uri = where(name)
    assert write_rows(uri, iter(ROWS)) == 3
    assert list(read_rows(uri)) == ROWS  # JSONL and Parquet alike for these rows: same keys, one type each


def test_jsonl_keeps_rows_exactly_as_written(where):
    rows = [{"a": 1, "mixed": [1, "two", {"three": 3}]}, {"b": {"only": "here"}}, {"a": 1.5, "nothing": None}]
    uri = where("ragged.jsonl")
    write_rows(uri, rows)
    assert list(read_rows(uri)) == rows


def test_parquet_gives_every_row_every_column(where):
    """Parquet stores one schema: a key missing from a row, or from a nested dict, reads back as None."""
    rows = [
        {"q": "a", "ids": [1, 2], "meta": {"k": 1}},
        {"q": "b", "ids": [], "meta": {"k": 2, "extra": "x"}, "late": 7},
    ]
    uri = where("ragged.parquet")
    assert write_rows(uri, rows) == 2
    assert list(read_rows(uri)) == [
        {"q": "a", "ids": [1, 2], "meta": {"k": 1, "extra": None}, "late": None},
        {"q": "b", "ids": [], "meta": {"k": 2, "extra": "x"}, "late": 7},
    ]


def test_parquet_schema_widens_across_row_groups(tmp_path):
    """A column that appears after the first row group (1,000 rows), or was all None, is not lost."""
    rows = [{"i": i, "maybe": None} for i in range(1500)] + [{"i": 1500, "maybe": "now", "new": [1]}]
    uri = str(tmp_path / "wide.parquet")
    assert write_rows(uri, (row for row in rows)) == 1501
    back = list(read_rows(uri))
    assert back[0] == {"i": 0, "maybe": None, "new": None}
    assert back[-1] == {"i": 1500, "maybe": "now", "new": [1]}
    assert len(back) == 1501
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wide.parquet"]  # no temporary left


def test_parquet_refuses_a_column_with_two_types(tmp_path):
    rows = [{"score": i} for i in range(1000)] + [{"score": "high"}]
    uri = str(tmp_path / "scores.parquet")
    with pytest.raises(DistilflowUserError) as error:
        write_rows(uri, rows)
    assert str(error.value).startswith(f"{uri}: rows do not fit one Parquet schema (")
    assert "Field score has incompatible types: int64 vs string" in str(error.value)
    assert "or write JSONL" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_write_rows_consumes_rows_lazily(tmp_path):
    produced = []

    def rows():
        for i in range(2500):
            produced.append(i)
            yield {"i": i}

    seen_at_first_row = []

    def watching():
        for n, row in enumerate(rows()):
            if n == 1200:
                seen_at_first_row.append(len(produced))
            yield row

    assert write_rows(str(tmp_path / "lazy.parquet"), watching()) == 2500
    assert seen_at_first_row == [1201]  # not the whole generator up front


def test_write_rows_replaces_a_file(where):
    uri = where("data.jsonl")
    write_rows(uri, [{"v": 1}])
    write_rows(uri, [{"v": 2}, {"v": 3}])
    assert list(read_rows(uri)) == [{"v": 2}, {"v": 3}]


@pytest.mark.parametrize("name", ["out.jsonl", "out.parquet", "outdir/"])
def test_dataset_writer_orders_parts_written_out_of_order_by_threads(where, name):
    uri = where(name)
    parts = {i: [{"part": i, "row": r, "text": f"p{i}r{r}"} for r in range(3)] for i in range(3)}
    started = threading.Barrier(3)

    def write(writer, index):
        started.wait()
        writer.write_part(index, parts[index])

    with DatasetWriter(uri) as writer:
        threads = [threading.Thread(target=write, args=(writer, i)) for i in (2, 0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert writer.rows_written == 9
        assert writer.commit() == 9
    assert list(read_rows(uri)) == parts[0] + parts[1] + parts[2]


def test_dataset_writer_file_target_leaves_only_the_file(where):
    uri = where("out/data.parquet")
    with DatasetWriter(uri) as writer:
        writer.write_part(1, [{"x": 2}])
        writer.write_part(0, [{"x": 1}])
        writer.commit()
    assert listing(where("out")) == ["data.parquet"]
    assert list(read_rows(uri)) == [{"x": 1}, {"x": 2}]


def test_dataset_writer_directory_layout_and_manifest(where):
    uri = where("ds/")
    with DatasetWriter(uri, format="parquet") as writer:
        writer.write_part(3, [{"x": 3}])
        writer.write_part(0, [{"x": 0}, {"x": 1}])
        writer.write_part(1, [])  # an empty batch stores nothing
        writer.commit()
    names = listing(where("ds"))
    token = names[-1].split("/")[0]
    assert token.startswith("parts-")
    assert names == ["_manifest.json", f"{token}/part-000000.parquet", f"{token}/part-000003.parquet"]
    from distilflow.storage import filesystem

    fs, path = filesystem(uri)
    manifest = json.loads(fs.cat_file(path.rstrip("/") + "/_manifest.json"))
    assert manifest["format"] == "parquet"
    assert manifest["parts"] == [f"{token}/part-000000.parquet", f"{token}/part-000003.parquet"]
    assert manifest["rows"] == 3
    assert list(read_rows(uri)) == [{"x": 0}, {"x": 1}, {"x": 3}]


def test_dataset_writer_rejects_an_index_twice(tmp_path):
    with DatasetWriter(str(tmp_path / "d.jsonl")) as writer:
        writer.write_part(0, [{"a": 1}])
        with pytest.raises(ValueError, match="part 0 was already written"):
            writer.write_part(0, [{"a": 2}])


def test_leaving_without_commit_removes_staged_parts(where):
    uri = where("kept.jsonl")
    write_rows(uri, [{"old": True}])
    with pytest.raises(RuntimeError, match="boom"), DatasetWriter(uri) as writer:
        writer.write_part(0, [{"old": False}])
        raise RuntimeError("boom")
    assert listing(where("")) == ["kept.jsonl"]
    assert list(read_rows(uri)) == [{"old": True}]


def test_directory_replacement_readers_see_old_rows_until_commit(where):
    uri = where("versions/")
    write_rows(uri, [{"v": 1, "i": i} for i in range(3)])
    old_parts = [name for name in listing(where("versions")) if name != "_manifest.json"]
    assert len(old_parts) == 1

    with DatasetWriter(uri) as writer:
        writer.write_part(0, [{"v": 2, "i": 0}])
        writer.write_part(1, [{"v": 2, "i": 1}])
        assert list(read_rows(uri)) == [{"v": 1, "i": i} for i in range(3)]  # staged parts are invisible
        writer.commit()

    assert list(read_rows(uri)) == [{"v": 2, "i": 0}, {"v": 2, "i": 1}]
    remaining = listing(where("versions"))
    assert not set(old_parts) & set(remaining)
    assert len(remaining) == 3  # the manifest and the two new parts


def test_directory_without_manifest_reads_visible_parts_in_name_order(where):
    from distilflow.storage import filesystem

    root = where("plain")
    fs, path = filesystem(root)
    if not root.startswith("s3://"):
        fs.makedirs(path, exist_ok=True)
    fs.pipe_file(f"{path}/b.jsonl", b'{"n": 2}\n')
    fs.pipe_file(f"{path}/a.jsonl", b'{"n": 1}\n')
    fs.pipe_file(f"{path}/_hidden.jsonl", b'{"n": "no"}\n')
    fs.pipe_file(f"{path}/.tmp.jsonl", b'{"n": "no"}\n')
    fs.pipe_file(f"{path}/notes.txt", b"not data")
    check_readable(root)
    assert list(read_rows(root)) == [{"n": 1}, {"n": 2}]


def test_check_readable_and_writable_accept_good_locations(where):
    uri = where("ok.jsonl")
    check_writable(uri)
    check_writable(where("new/dir/"))
    write_rows(uri, ROWS)
    check_readable(uri)
    assert listing(where("")) == ["ok.jsonl"]  # the probes are gone


def test_save_image_on_s3_is_content_addressed_and_written_once(s3):
    png = b"\x89PNG\r\n\x1a\n" + b"pixels" * 10
    digest = hashlib.sha256(png).hexdigest()
    client = s3.client()

    uri = save_image(base64.b64encode(png).decode(), s3.uri("images"))
    assert uri == f"s3://{s3.bucket}/images/{digest}.png"
    first = client.head_object(Bucket=s3.bucket, Key=f"images/{digest}.png")
    assert client.get_object(Bucket=s3.bucket, Key=f"images/{digest}.png")["Body"].read() == png

    assert save_image(base64.b64encode(png).decode(), s3.uri("images/")) == uri
    again = client.head_object(Bucket=s3.bucket, Key=f"images/{digest}.png")
    assert again["LastModified"] == first["LastModified"] and again["ETag"] == first["ETag"]
    keys = [obj["Key"] for obj in client.list_objects_v2(Bucket=s3.bucket)["Contents"]]
    assert keys == [f"images/{digest}.png"]


def test_save_image_locally(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + b"x"
    path = save_image(base64.b64encode(png).decode(), str(tmp_path / "img"))
    assert path == f"{tmp_path}/img/{hashlib.sha256(png).hexdigest()}.png"
    assert (tmp_path / "img").joinpath(path.rsplit("/", 1)[1]).read_bytes() == png
