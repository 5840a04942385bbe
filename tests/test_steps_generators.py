"""distilabel's loaders in distilflow: exact batches and last_batch flags, offsets, lazy reading,
files on S3 (a moto server on loopback), Hugging Face `save_to_disk` directories, and the errors.

The `save_to_disk` fixtures are written with pyarrow in the layout `datasets` documents (Arrow
stream files listed in state.json), so these tests do not need `datasets`; one test checks the
same reader against directories written by `datasets` itself, where it is installed.
"""

from __future__ import annotations

import json
import random
import types
from pathlib import Path

import pytest

from distilflow.storage import write_rows
from distilflow.errors import DistilflowUserError
from distilflow.pipeline import Pipeline
from distilflow.steps.base import Step
from distilflow.steps.generators import (
    DataSampler,
    LoadDataFromDataset,
    LoadDataFromDicts,
    LoadDataFromDisk,
    LoadDataFromFileSystem,
    make_generator_step,
)

ROWS = [{"instruction": f"q{i}", "id": i} for i in range(5)]


def run(loader, offset: int = 0) -> list[tuple[list[dict], bool]]:
    return list(loader.process(offset=offset))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# -- LoadDataFromDicts ---------------------------------------------------------------------------


def test_dicts_yield_batches_flagging_the_last():
    loader = LoadDataFromDicts(data=ROWS, batch_size=2)
    assert loader.outputs == ["instruction", "id"]
    assert run(loader) == [(ROWS[0:2], False), (ROWS[2:4], False), (ROWS[4:5], True)]


def test_dicts_whose_count_is_a_multiple_of_the_batch_size_flag_the_last_full_batch():
    assert run(LoadDataFromDicts(data=ROWS[:4], batch_size=2)) == [(ROWS[0:2], False), (ROWS[2:4], True)]


def test_dicts_offset_starts_after_the_first_rows():
    loader = LoadDataFromDicts(data=ROWS, batch_size=2)
    assert run(loader, offset=3) == [(ROWS[3:5], True)]
    assert run(loader, offset=1) == [(ROWS[1:3], False), (ROWS[3:5], True)]
    assert run(loader, offset=5) == []
    assert run(LoadDataFromDicts(data=[], batch_size=2)) == []


def test_dicts_hand_out_copies_so_data_survives_a_later_step_and_a_rerun():
    loader = LoadDataFromDicts(data=ROWS, batch_size=5)
    (rows, _), = run(loader)
    rows[0]["instruction"] = "changed"
    assert loader.data == ROWS
    assert run(loader) == [(ROWS, True)]


def test_dicts_output_mappings_rename_columns():
    loader = LoadDataFromDicts(data=ROWS[:2], batch_size=5, output_mappings={"instruction": "prompt"})
    assert list(loader.process_applying_mappings()) == [([{"prompt": "q0", "id": 0}, {"prompt": "q1", "id": 1}], True)]


# -- DataSampler ---------------------------------------------------------------------------------


def test_sampler_rows_hold_size_values_per_column_from_whole_rows():
    data = [{"a": i, "b": -i} for i in range(30)]
    sampler = DataSampler(data=data, size=3, samples=5, batch_size=2)
    sampler.load()
    batches = run(sampler)
    assert [(len(rows), last) for rows, last in batches] == [(2, False), (2, False), (1, True)]
    for rows, _ in batches:
        for row in rows:
            assert list(row) == ["a", "b"]
            assert len(row["a"]) == 3 and row["b"] == [-a for a in row["a"]]  # each draw is one row of data


def test_sampler_offset_makes_only_the_samples_still_missing():
    sampler = DataSampler(data=[{"a": 1}], size=2, samples=5, batch_size=2)
    assert run(sampler, offset=3) == [([{"a": [1, 1]}, {"a": [1, 1]}], True)]
    assert run(sampler, offset=5) == []


def test_sampler_gives_every_row_every_column():
    random.seed(0)
    sampler = DataSampler(data=[{"a": 1}, {"b": 2}], size=4, samples=3, batch_size=3)
    assert sampler.outputs == ["a", "b"]
    (rows, last), = run(sampler)
    assert last is True
    for row in rows:
        assert list(row) == ["a", "b"]
        assert all((a is None) != (b is None) for a, b in zip(row["a"], row["b"]))


def test_sampler_without_data_fails_at_load():
    with pytest.raises(DistilflowUserError) as error:
        DataSampler(name="sampler", data=[]).load()
    assert str(error.value) == (
        "DataSampler 'sampler': `data` is empty, so there is nothing to sample; give it the rows to draw from "
        "(data=[{...}, ...])."
    )


# -- make_generator_step -------------------------------------------------------------------------


def test_make_generator_step_from_dicts_joins_the_pipeline():
    with Pipeline(name="p") as pipeline:
        loader = make_generator_step(ROWS, batch_size=3, output_mappings={"id": "row_id"})
    assert isinstance(loader, LoadDataFromDicts) and loader.pipeline is pipeline
    assert list(loader.process_applying_mappings()) == [
        ([{"instruction": f"q{i}", "row_id": i} for i in range(3)], False),
        ([{"instruction": f"q{i}", "row_id": i} for i in range(3, 5)], True),
    ]


def test_make_generator_step_refuses_other_types():
    with pytest.raises(DistilflowUserError) as error:
        make_generator_step({"instruction": ["q0"]})
    assert str(error.value) == (
        "make_generator_step: cannot load rows from a dict; give a list of dicts, a pandas DataFrame or a Hugging "
        "Face datasets.Dataset (for files, use LoadDataFromFileSystem or LoadDataFromDisk)."
    )


def test_make_generator_step_from_a_dataframe():
    pandas = pytest.importorskip("pandas")
    loader = make_generator_step(pandas.DataFrame(ROWS), batch_size=2)
    assert isinstance(loader, LoadDataFromDataset)
    assert loader.outputs == ["instruction", "id"]
    assert run(loader) == [(ROWS[0:2], False), (ROWS[2:4], False), (ROWS[4:5], True)]
    assert run(loader, offset=4) == [(ROWS[4:5], True)]


def test_make_generator_step_from_a_hugging_face_dataset():
    datasets = pytest.importorskip("datasets")
    loader = make_generator_step(datasets.Dataset.from_list(ROWS), batch_size=3)
    assert isinstance(loader, LoadDataFromDataset) and loader.outputs == ["instruction", "id"]
    assert run(loader) == [(ROWS[0:3], False), (ROWS[3:5], True)]


# -- LoadDataFromFileSystem: formats, globs, directories -----------------------------------------


def loaded(data_files, **settings) -> LoadDataFromFileSystem:
    loader = LoadDataFromFileSystem(name="loader", data_files=data_files, **settings)
    loader.load()
    return loader


def test_jsonl_file_batches_columns_and_offset(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", ROWS)
    loader = loaded(path, batch_size=2)
    assert loader.outputs == ["instruction", "id"]
    assert run(loader) == [(ROWS[0:2], False), (ROWS[2:4], False), (ROWS[4:5], True)]
    assert run(loader, offset=3) == [(ROWS[3:5], True)]
    assert run(loaded(path, batch_size=2, num_examples=4)) == [(ROWS[0:2], False), (ROWS[2:4], True)]
    assert run(loaded(path, batch_size=2, num_examples=4), offset=3) == [(ROWS[3:4], True)]


def test_json_files_hold_json_lines_or_one_array(tmp_path):
    (tmp_path / "array.json").write_text(json.dumps(ROWS, indent=2), encoding="utf-8")
    (tmp_path / "lines.json").write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    (tmp_path / "empty.json").write_text(" [ ] ", encoding="utf-8")
    assert run(loaded(tmp_path / "array.json", batch_size=3)) == [(ROWS[0:3], False), (ROWS[3:5], True)]
    assert run(loaded(tmp_path / "array.json", batch_size=3), offset=4) == [(ROWS[4:5], True)]
    assert run(loaded(tmp_path / "lines.json", batch_size=5)) == [(ROWS, True)]
    assert run(loaded(tmp_path / "*.json", batch_size=10)) == [(ROWS + ROWS, True)]  # array, empty, lines


def test_a_json_array_is_read_element_by_element(tmp_path, bytes_read):
    rows = [{"id": i, "text": "x" * 100} for i in range(30_000)]  # about 3.5 MB, elements across 1 MiB chunks
    (tmp_path / "big.json").write_text(json.dumps(rows), encoding="utf-8")
    loader = loaded(tmp_path / "big.json", batch_size=1000)
    bytes_read[0] = 0
    first, last = next(loader.process())
    assert first == rows[:1000] and last is False
    assert bytes_read[0] <= 2**20  # one chunk of the file
    assert [row for batch, _ in run(loader) for row in batch] == rows


def test_csv_columns_keep_their_types_and_dates_stay_text(tmp_path):
    (tmp_path / "rows.csv").write_text("name,count,score,day\na,1,0.5,2024-01-01\nb,2,,2024-01-02\n", encoding="utf-8")
    loader = loaded(tmp_path / "rows.csv", batch_size=5)
    assert loader.outputs == ["name", "count", "score", "day"]
    assert run(loader) == [([
        {"name": "a", "count": 1, "score": 0.5, "day": "2024-01-01"},
        {"name": "b", "count": 2, "score": None, "day": "2024-01-02"},
    ], True)]
    assert run(loader, offset=1) == [([{"name": "b", "count": 2, "score": None, "day": "2024-01-02"}], True)]


def test_parquet_files_and_filetype_given_for_an_unusual_name(tmp_path):
    write_rows(str(tmp_path / "rows.parquet"), ROWS)
    assert run(loaded(tmp_path / "rows.parquet", batch_size=4)) == [(ROWS[0:4], False), (ROWS[4:5], True)]
    assert run(loaded(tmp_path / "rows.parquet", batch_size=4), offset=2) == [(ROWS[2:5], True)]
    (tmp_path / "rows.txt").write_text("instruction,id\nq0,0\n", encoding="utf-8")
    assert run(loaded(tmp_path / "rows.txt", filetype="csv")) == [([ROWS[0]], True)]


def test_a_parquet_offset_passes_over_whole_row_groups(tmp_path):
    rows = [{"id": i} for i in range(2500)]  # row groups of 1000 rows
    write_rows(str(tmp_path / "rows.parquet"), rows)
    assert run(loaded(tmp_path / "rows.parquet", batch_size=600), offset=2100) == [(rows[2100:2500], True)]


def test_a_glob_reads_its_files_in_name_order_as_one_stream(tmp_path):
    for i in range(3):
        write_jsonl(tmp_path / f"part-{i}.jsonl", [{"file": i, "row": j} for j in range(3)])
    write_jsonl(tmp_path / ".hidden.jsonl", [{"file": "hidden"}])
    everything = [{"file": i, "row": j} for i in range(3) for j in range(3)]
    loader = loaded(str(tmp_path / "*.jsonl"), batch_size=4)
    assert [Path(uri).name for uri in loader._files.uris] == ["part-0.jsonl", "part-1.jsonl", "part-2.jsonl"]
    assert run(loader) == [(everything[0:4], False), (everything[4:8], False), (everything[8:9], True)]
    assert run(loader, offset=5) == [(everything[5:9], True)]  # the offset carries across files
    assert run(loaded(str(tmp_path / "*.jsonl"), batch_size=4, num_examples=5), offset=2) == [(everything[2:5], True)]


def test_a_directory_gives_its_files_and_those_of_its_subdirectories(tmp_path):
    write_jsonl(tmp_path / "data" / "train" / "a.jsonl", [{"x": 1}])
    write_jsonl(tmp_path / "data" / "validation" / "b.jsonl", [{"x": 2}])
    write_jsonl(tmp_path / "data" / "c.jsonl", [{"x": 3}])
    write_jsonl(tmp_path / "data" / "deep" / "er" / "d.jsonl", [{"x": 4}])  # deeper than distilabel reads
    write_jsonl(tmp_path / "data" / "_staging" / "e.jsonl", [{"x": 5}])
    (tmp_path / "data" / "README.md").write_text("# not data\n", encoding="utf-8")
    assert run(loaded(tmp_path / "data", batch_size=5)) == [([{"x": 3}, {"x": 1}, {"x": 2}], True)]
    assert run(loaded(str(tmp_path / "data" / "**" / "*.jsonl"), batch_size=1))[-1] == ([{"x": 2}], True)


def test_a_distilflow_dataset_directory_is_read_through_its_manifest(tmp_path):
    write_rows(str(tmp_path / "out") + "/", ROWS)
    write_jsonl(tmp_path / "out" / "parts-not-committed" / "part.jsonl", [{"stray": True}])
    assert run(loaded(tmp_path / "out", batch_size=5)) == [(ROWS, True)]


def test_output_mappings_are_checked_at_load_and_applied(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", ROWS[:1])
    loader = LoadDataFromFileSystem(data_files=path, output_mappings={"instruction": "prompt"})
    loader.load()
    assert list(loader.process_applying_mappings()) == [([{"prompt": "q0", "id": 0}], True)]
    wrong = LoadDataFromFileSystem(name="loader", data_files=path, output_mappings={"question": "prompt"})
    with pytest.raises(DistilflowUserError) as error:
        wrong.load()
    assert str(error.value) == (  # distilabel's words, and the fix
        "The output column 'question' doesn't exist in the outputs of the step 'loader'. Outputs of the step are: "
        "['instruction', 'id']. output_mappings keys are the step's output names, values new column names."
    )


def test_outputs_before_load_read_only_the_first_row(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\nnot json\n", encoding="utf-8")

    class Answer(Step):
        @property
        def inputs(self):
            return ["instruction"]

        @property
        def outputs(self):
            return ["answer"]

        def process(self, rows):
            yield rows

    with Pipeline(name="p") as pipeline:
        loader = LoadDataFromFileSystem(data_files=str(path))
        loader >> Answer(input_mappings={"instruction": "id"})
    assert loader.outputs == ["instruction", "id"]
    pipeline.validate()


# -- LoadDataFromFileSystem: lazy reading ------------------------------------------------------


@pytest.fixture(scope="module")
def million_rows(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "rows.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f'{{"id": {i}, "text": "row {i}"}}\n' for i in range(1_000_000))
    return path


@pytest.fixture
def bytes_read(monkeypatch) -> list[int]:
    """Bytes read from local files through fsspec since the fixture was set up (one counter)."""
    from fsspec.implementations.local import LocalFileOpener

    count = [0]
    read = LocalFileOpener.read

    def counting(self, *args, **kwargs):
        data = read(self, *args, **kwargs)
        count[0] += len(data)
        return data

    monkeypatch.setattr(LocalFileOpener, "read", counting)
    return count


def test_a_million_row_jsonl_streams_batch_by_batch(million_rows, bytes_read):
    size = million_rows.stat().st_size  # about 37 MB
    loader = loaded(million_rows, batch_size=10_000)
    assert bytes_read[0] <= 2 * 2**20  # load() read the first row's chunk, not the file
    batches = loader.process()
    rows, last = next(batches)
    assert rows[0] == {"id": 0, "text": "row 0"} and last is False
    assert bytes_read[0] <= 4 * 2**20
    seen = len(rows)
    for rows, last in batches:
        seen += len(rows)
        # never more than about one chunk ahead of the rows handed out
        assert bytes_read[0] <= 2 * 2**20 + size * seen / 1_000_000 + 2 * 2**20
    assert seen == 1_000_000 and last is True


def test_a_resumed_run_passes_over_rows_without_parsing_them(tmp_path, monkeypatch):
    from distilflow.storage import formats

    rows = [{"id": i} for i in range(1000)]
    loader = loaded(write_jsonl(tmp_path / "rows.jsonl", rows), batch_size=8)
    parsed = []
    counting = types.SimpleNamespace(**vars(json))
    counting.loads = lambda text, **kwargs: parsed.append(text) or json.loads(text, **kwargs)
    monkeypatch.setattr(formats, "json", counting)
    assert run(loader, offset=990) == [(rows[990:998], False), (rows[998:1000], True)]
    assert len(parsed) == 10


# -- LoadDataFromFileSystem: errors ------------------------------------------------------------


def load_error(**settings) -> str:
    with pytest.raises(DistilflowUserError) as error:
        LoadDataFromFileSystem(name="loader", **settings).load()
    return str(error.value)


def test_a_missing_file_fails_at_load(tmp_path):
    missing = tmp_path / "missing.jsonl"
    assert load_error(data_files=missing) == (
        f"LoadDataFromFileSystem 'loader': {missing}: no such file or directory; check the path or URI."
    )
    with pytest.raises(FileNotFoundError):  # still one, for code that catches it
        loaded(missing)


def test_an_empty_glob_fails_at_load(tmp_path):
    pattern = str(tmp_path / "*.jsonl")
    assert load_error(data_files=pattern) == (
        f"LoadDataFromFileSystem 'loader': {pattern}: no file in the file system matches this pattern; check it "
        "(`*` matches within one folder, `**` across folders) and that the files exist."
    )


def test_an_unknown_file_type_fails_at_load(tmp_path):
    (tmp_path / "rows.txt").write_text("x\n", encoding="utf-8")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("x\n", encoding="utf-8")
    assert load_error(data_files=tmp_path / "rows.txt") == (
        f"LoadDataFromFileSystem 'loader': {tmp_path / 'rows.txt'}: the file type cannot be told from the name "
        "(.txt); give filetype= one of jsonl, json, csv, parquet, or name the file after its type."
    )
    assert load_error(data_files=tmp_path / "rows.txt", filetype="xml") == (
        f"LoadDataFromFileSystem 'loader': {tmp_path / 'rows.txt'}: filetype 'xml' is not one distilflow reads; use "
        "one of jsonl, json, csv, parquet, or leave it unset to tell the type from the file names."
    )
    assert load_error(data_files=tmp_path / "notes") == (
        f"LoadDataFromFileSystem 'loader': {tmp_path / 'notes'}: a directory with no .jsonl/.json/.csv/.parquet "
        "files in it or in its sub-directories; point data_files at the files (a path or a glob such as "
        "'data/**/*.jsonl')."
    )


def test_a_bad_first_row_fails_at_load_and_a_later_one_when_reached(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"a": 1\n', encoding="utf-8")
    assert load_error(data_files=tmp_path / "bad.jsonl") == (
        f"LoadDataFromFileSystem 'loader': {tmp_path / 'bad.jsonl'}, line 1: not valid JSON (Expecting ',' "
        "delimiter at column 8); a JSONL file holds one JSON object per line."
    )
    (tmp_path / "list.jsonl").write_text("[1, 2]\n", encoding="utf-8")
    assert load_error(data_files=tmp_path / "list.jsonl") == (
        f"LoadDataFromFileSystem 'loader': {tmp_path / 'list.jsonl'}, line 1: a row must be a JSON object, got "
        "list; a JSONL file holds one JSON object per line."
    )
    (tmp_path / "array.json").write_text('[{"a": 1}, {"a": 2} {"a": 3}]', encoding="utf-8")
    loader = loaded(tmp_path / "array.json", batch_size=1)
    with pytest.raises(DistilflowUserError) as error:
        run(loader)
    assert str(error.value) == (
        f"{tmp_path / 'array.json'}, element 1: not valid JSON (expected ',' or ']' after it, found '{{'); a JSON "
        "file holds one JSON object per line, or one array of objects."
    )
    path = tmp_path / "later.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": \n', encoding="utf-8")
    batches = loaded(path, batch_size=1).process()
    assert next(batches) == ([{"a": 1}], False)
    assert next(batches) == ([{"a": 2}], False)  # rows after it, if bad: not the last batch
    with pytest.raises(DistilflowUserError) as error:
        next(batches)
    assert str(error.value) == (
        f"{path}, line 3: not valid JSON (Expecting value at column 7); a JSONL file holds one JSON object per line."
    )


def test_files_without_rows_fail_at_load(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    assert load_error(data_files=tmp_path / "empty.jsonl") == (
        f"LoadDataFromFileSystem 'loader': {tmp_path / 'empty.jsonl'}: no rows, so no columns to load; point the "
        "loader at files that hold rows."
    )


def test_settings_a_file_loader_cannot_use_are_refused(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", ROWS)
    assert load_error() == (
        "LoadDataFromFileSystem 'loader': data_files is not set; give the path, glob or URI of the files "
        "(data_files=... when building the step, or as a run-time parameter)."
    )
    assert load_error(data_files=path, split="test") == (
        "LoadDataFromFileSystem 'loader': split='test', but the files of data_files make one split, 'train' (as in "
        "Hugging Face datasets); point data_files at that split's files (e.g. 'data/test/*.jsonl') and leave split "
        "unset."
    )
    with pytest.raises(DistilflowUserError) as error:  # refused when the pipeline checks the steps, or at load
        LoadDataFromFileSystem(name="loader", data_files=path, input_mappings={"instruction": "prompt"}).load()
    assert (
        "LoadDataFromFileSystem 'loader': input_mappings ['instruction'] given, but a loader reads no input "
        "columns; remove them (output_mappings rename the columns it loads)."
    ) in str(error.value)


# -- LoadDataFromFileSystem on S3 ----------------------------------------------------------------


def test_files_on_s3_through_a_glob(s3):
    write_rows(s3.uri("in/part-0.jsonl"), ROWS[:3])
    write_rows(s3.uri("in/part-1.parquet"), ROWS[3:])
    write_rows(s3.uri("in/sub/part-2.jsonl"), [{"instruction": "deep", "id": 9}])
    loader = loaded(s3.uri("in/part-*"), batch_size=2)
    assert loader._files.uris == [s3.uri("in/part-0.jsonl"), s3.uri("in/part-1.parquet")]
    assert loader.outputs == ["instruction", "id"]
    assert run(loader) == [(ROWS[0:2], False), (ROWS[2:4], False), (ROWS[4:5], True)]
    assert run(loader, offset=3) == [(ROWS[3:5], True)]
    assert run(loaded(s3.uri("in"), batch_size=10)) == [(ROWS + [{"instruction": "deep", "id": 9}], True)]


def test_missing_files_and_buckets_on_s3(s3):
    assert load_error(data_files=s3.uri("missing.jsonl")) == (
        f"LoadDataFromFileSystem 'loader': {s3.uri('missing.jsonl')}: no such file or directory; check the path or URI."
    )
    assert load_error(data_files=s3.uri("in/*.jsonl")) == (
        f"LoadDataFromFileSystem 'loader': {s3.uri('in/*.jsonl')}: no file in the bucket matches this pattern; check "
        "it (`*` matches within one folder, `**` across folders) and that the files exist."
    )
    assert load_error(data_files="s3://no-such-bucket-here/in/*.jsonl") == (
        "LoadDataFromFileSystem 'loader': s3://no-such-bucket-here/in/*.jsonl: bucket 'no-such-bucket-here' does not "
        "exist; create it or fix the URI."
    )


def test_storage_options_are_laid_over_the_environment(s3, monkeypatch):
    write_rows(s3.uri("rows.jsonl"), ROWS)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    from distilflow.storage.filesystems import clear_cache

    clear_cache()
    options = {"client_kwargs": {"endpoint_url": s3.endpoint_url}}
    loader = loaded(s3.uri("rows.jsonl"), batch_size=5, storage_options=options)
    assert run(loader) == [(ROWS, True)]


# -- LoadDataFromDisk ------------------------------------------------------------------------------


def save_like_datasets(directory: Path, columns: dict[str, list], shards: int = 1) -> Path:
    """A directory as `Dataset.save_to_disk` writes it: Arrow stream files (`data-0000i-of-0000n.arrow`,
    here of several record batches each) listed in state.json, the features in dataset_info.json."""
    import pyarrow as pa

    table = pa.table(columns)
    directory.mkdir(parents=True)
    per_shard = -(-len(table) // shards)
    names = [f"data-{i:05d}-of-{shards:05d}.arrow" for i in range(shards)]
    for i, name in enumerate(names):
        with pa.OSFile(str(directory / name), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table.slice(i * per_shard, per_shard), max_chunksize=2)
    state = {
        "_data_files": [{"filename": name} for name in names], "_fingerprint": "0", "_format_columns": None,
        "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False, "_split": None,
    }
    (directory / "state.json").write_text(json.dumps(state), encoding="utf-8")
    features = {name: {"dtype": str(table.schema.field(name).type), "_type": "Value"} for name in columns}
    (directory / "dataset_info.json").write_text(json.dumps({"features": features}), encoding="utf-8")
    return directory


def save_dict_like_datasets(directory: Path, splits: dict[str, dict[str, list]]) -> Path:
    """A directory as `DatasetDict.save_to_disk` writes it: dataset_dict.json and one dataset per split."""
    for split, columns in splits.items():
        save_like_datasets(directory / split, columns)
    (directory / "dataset_dict.json").write_text(json.dumps({"splits": list(splits)}), encoding="utf-8")
    return directory


def disk(dataset_path, **settings) -> LoadDataFromDisk:
    loader = LoadDataFromDisk(name="loader", dataset_path=dataset_path, **settings)
    loader.load()
    return loader


def disk_error(dataset_path, **settings) -> str:
    with pytest.raises(DistilflowUserError) as error:
        disk(dataset_path, **settings)
    return str(error.value)


def test_a_saved_dataset_is_read_across_its_shards(tmp_path):
    rows = [{"a": i, "b": f"t{i}"} for i in range(7)]
    path = save_like_datasets(tmp_path / "ds", {"a": [r["a"] for r in rows], "b": [r["b"] for r in rows]}, shards=3)
    loader = disk(path, batch_size=3)
    assert loader.outputs == ["a", "b"]
    assert run(loader) == [(rows[0:3], False), (rows[3:6], False), (rows[6:7], True)]
    assert run(loader, offset=4) == [(rows[4:7], True)]
    assert run(disk(path, batch_size=3, num_examples=5), offset=1) == [(rows[1:4], False), (rows[4:5], True)]


def test_an_empty_saved_dataset_has_its_features_as_columns(tmp_path):
    loader = disk(save_like_datasets(tmp_path / "ds", {"a": [], "b": []}))
    assert loader.outputs == ["a", "b"]
    assert run(loader) == []


def test_a_saved_dataset_dict_is_read_by_split(tmp_path):
    path = save_dict_like_datasets(tmp_path / "dd", {"train": {"a": [1, 2]}, "test": {"a": [3]}})
    assert run(disk(path, split="test")) == [([{"a": 3}], True)]
    assert run(disk(save_dict_like_datasets(tmp_path / "one", {"train": {"a": [1]}}))) == [([{"a": 1}], True)]
    assert disk_error(path) == (
        f"LoadDataFromDisk 'loader': {path}: the dataset has splits ['train', 'test']; say which to read with split=..."
    )
    assert disk_error(path, split="validation") == (
        f"LoadDataFromDisk 'loader': {path}: the dataset has no split 'validation'; it has ['train', 'test']: set "
        "split to one of them."
    )


def test_a_saved_distiset_is_read_by_configuration(tmp_path):
    path = tmp_path / "distiset"
    save_like_datasets(path / "leaf_step_1", {"a": [1, 2, 3]})
    save_dict_like_datasets(path / "leaf_step_2", {"train": {"a": [4], "b": [5]}})
    (path / "distiset_configs").mkdir()
    assert run(disk(path, is_distiset=True, config="leaf_step_1")) == [([{"a": 1}, {"a": 2}, {"a": 3}], True)]
    loader = disk(path, is_distiset=True, config="leaf_step_2")
    assert loader.outputs == ["a", "b"] and run(loader) == [([{"a": 4, "b": 5}], True)]
    assert disk_error(path, is_distiset=True) == (
        f"LoadDataFromDisk 'loader': {path}: the Distiset has configurations ['leaf_step_1', 'leaf_step_2']; say which "
        "to read with config=..."
    )
    assert disk_error(path, is_distiset=True, config="default") == (
        f"LoadDataFromDisk 'loader': {path}: the Distiset has no configuration 'default'; it has ['leaf_step_1', "
        "'leaf_step_2']: set config to one of them."
    )
    save_like_datasets(tmp_path / "single" / "default", {"a": [0]})
    assert run(disk(tmp_path / "single", is_distiset=True)) == [([{"a": 0}], True)]


def test_what_is_not_a_saved_dataset_fails_at_load(tmp_path):
    write_jsonl(tmp_path / "plain" / "rows.jsonl", ROWS)
    assert disk_error(tmp_path / "plain") == (
        f"LoadDataFromDisk 'loader': {tmp_path / 'plain'}: no state.json or dataset_dict.json, so not a directory "
        "written by `save_to_disk`; point dataset_path at one (with is_distiset=True for a Distiset)."
    )
    assert disk_error(tmp_path / "plain" / "rows.jsonl") == (
        f"LoadDataFromDisk 'loader': {tmp_path / 'plain' / 'rows.jsonl'}: a file, not a directory written by "
        "`save_to_disk`; point dataset_path at that directory, or read the file with LoadDataFromFileSystem."
    )
    assert disk_error(tmp_path / "missing") == (
        f"LoadDataFromDisk 'loader': {tmp_path / 'missing'}: no such file or directory; check the path or URI."
    )
    path = save_like_datasets(tmp_path / "ds", {"a": [1]})
    assert disk_error(path, split="train") == (
        f"LoadDataFromDisk 'loader': {path}: a single dataset without splits (no dataset_dict.json), so split='train' "
        "names nothing; leave split unset."
    )
    with pytest.raises(DistilflowUserError) as error:
        LoadDataFromDisk(name="loader").load()
    assert str(error.value) == (
        "LoadDataFromDisk 'loader': dataset_path is not set; give the directory the dataset was saved to "
        "(dataset_path=... when building the step, or as a run-time parameter)."
    )


def test_a_saved_dataset_on_s3(s3, tmp_path):
    from distilflow.storage import filesystem

    local = save_dict_like_datasets(tmp_path / "dd", {"train": {"a": [1, 2, 3]}, "test": {"a": [4]}})
    fs, root = filesystem(s3.uri())
    fs.put(str(local), f"{root.rstrip('/')}/dd", recursive=True)
    assert run(disk(s3.uri("dd"), split="train", batch_size=2)) == [([{"a": 1}, {"a": 2}], False), ([{"a": 3}], True)]


def test_directories_written_by_hugging_face_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [{"a": i, "b": f"t{i}"} for i in range(5)]
    datasets.Dataset.from_list(rows).select([4, 0, 2]).save_to_disk(str(tmp_path / "ds"), num_shards=2)
    assert run(disk(tmp_path / "ds", batch_size=2)) == [([rows[4], rows[0]], False), ([rows[2]], True)]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "dd"))
    assert run(disk(tmp_path / "dd", split="train", batch_size=5)) == [(rows, True)]
