"""Bad input, before any request: one clear message, no request where it was knowable, nothing half-written.

Each case is met the way a user meets it: `python flows/text_generation.py ...` against the session's
simulator (most cases), or the Python API (`TextGeneration`, `OpenAILLM`, `run_tasks`). Every CLI
case starts with an earlier good dataset at the output path and checks that it is byte-identical
afterwards, with nothing new beside it (no staging parts, temp files or write probes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from distilflow.errors import DistilflowUserError

from distilflow.steps.tasks import TextGeneration
from distilflow.errors import InvalidSettingsError
from distilflow.models import OpenAILLM
from distilflow.runner import run_tasks

ROOT = Path(__file__).resolve().parents[2]
EARLIER = b'{"instruction": "an earlier run", "generation": "its answer", "model_name": "m"}\n'
GOOD_ROWS = [{"instruction": f"question {i}"} for i in range(6)]

pytestmark = pytest.mark.usefixtures("prefect_api")  # the flow processes talk to the session's server


def jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def run_flow(tmp_path: Path, sim, *args: str) -> subprocess.CompletedProcess:
    """`python flows/text_generation.py ARGS` in its own process and working directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "OPENAI_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_API_URL=PREFECT_API_URL.value(),
               OPENAI_BASE_URL=sim.base_url, OPENAI_API_KEY="sk-local-test")
    command = [sys.executable, str(ROOT / "flows" / "text_generation.py"), "--run.result-storage", str(tmp_path / "results"), *args]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def assert_one_clear_error(done: subprocess.CompletedProcess, *key_words: str, status: int = 2) -> str:
    """Exit `status`, no traceback, and exactly one `error: ...` line, holding every key word."""
    assert done.returncode == status, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ") or ": error: " in line]
    assert len(errors) == 1, done.stderr[-3000:]
    for word in key_words:
        assert word in errors[0], f"{word!r} not in {errors[0]!r}"
    return errors[0]


@pytest.fixture
def earlier_output(tmp_path):
    """out/rows.jsonl from an earlier good run (check it with `assert_kept`)."""
    output = tmp_path / "out" / "rows.jsonl"
    output.parent.mkdir()
    output.write_bytes(EARLIER)
    return output


def assert_kept(output: Path) -> None:
    """The earlier dataset is byte-identical, with nothing new beside it (staging parts, temp files, probes)."""
    assert output.read_bytes() == EARLIER
    assert sorted(os.listdir(output.parent)) == [output.name]


def _write_input(tmp_path: Path, case: str) -> str:
    inputs = tmp_path / "in"
    inputs.mkdir()
    if case == "missing column":
        return str(jsonl(inputs / "rows.jsonl", [{"prompt": "no instruction column"}]))
    if case == "int":
        return str(jsonl(inputs / "rows.jsonl", [{"instruction": "fine"}, {"instruction": 7}]))
    if case == "list":
        return str(jsonl(inputs / "rows.jsonl", [{"instruction": "a"}, {"instruction": "b"}, {"instruction": ["c"]}]))
    if case == "None":
        return str(jsonl(inputs / "rows.jsonl", [{"instruction": "fine"}, {"instruction": None}]))
    if case == "empty file":
        (inputs / "rows.jsonl").write_bytes(b"")
        return str(inputs / "rows.jsonl")
    if case == "missing file":
        return str(inputs / "no-such-file.jsonl")
    if case == "directory of garbage":
        (inputs / "notes.txt").write_text("not rows")
        (inputs / "blob.bin").write_bytes(os.urandom(64))
        return str(inputs)
    if case == "not UTF-8":
        (inputs / "rows.jsonl").write_bytes('{"instruction": "ok"}\n{"instruction": "caf\xe9"}\n'.encode("latin-1"))
        return str(inputs / "rows.jsonl")
    if case == "not JSON":
        (inputs / "rows.jsonl").write_text('{"instruction": "ok"}\n{"instruction": oops}\n')
        return str(inputs / "rows.jsonl")
    raise AssertionError(case)


INPUT_CASES = {
    "missing column": ["row 0 has no column(s) ['instruction'], only ['prompt']",
                       """--template '{{ prompt }}' --columns '["prompt"]'"""],
    "int": ["row 1", "Input `instruction` must be a string. Got: 7.", "Give every row text"],
    "list": ["row 2", "Input `instruction` must be a string. Got: ['c']."],
    "None": ["row 1", "Input `instruction` must be a string. Got: None."],
    "empty file": ["rows.jsonl has no rows", "Add rows to it", "--input"],
    "missing file": ["no-such-file.jsonl: no such file or directory", "check the path"],
    "directory of garbage": ["not a dataset", "no .jsonl or .parquet files", "point at a dataset"],
    "not UTF-8": ["rows.jsonl, line 2: not UTF-8 text", "re-encode the file as UTF-8"],
    "not JSON": ["rows.jsonl, line 2: not valid JSON", "one JSON object per line"],
}


@pytest.mark.parametrize("case", list(INPUT_CASES))
def test_bad_input_file(case, tmp_path, sim, earlier_output):
    done = run_flow(tmp_path, sim, "--input", _write_input(tmp_path, case), "--output", str(earlier_output))
    assert_one_clear_error(done, *INPUT_CASES[case])
    assert sim.stats()["requests"] == 0
    assert_kept(earlier_output)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_input_file(tmp_path, sim, earlier_output):
    locked = jsonl(tmp_path / "in" / "rows.jsonl", GOOD_ROWS)
    locked.chmod(0)
    try:
        done = run_flow(tmp_path, sim, "--input", str(locked), "--output", str(earlier_output))
    finally:
        locked.chmod(0o644)
    assert_one_clear_error(done, "rows.jsonl: permission denied", "may not read", "change its permissions")
    assert sim.stats()["requests"] == 0
    assert_kept(earlier_output)


def test_unreadable_input_file_as_root_too(tmp_path, monkeypatch):
    """What the test above checks, for a root user: the OS refusal becomes the same one line."""
    from fsspec.implementations.local import LocalFileSystem

    from distilflow.storage import read_rows

    path = jsonl(tmp_path / "rows.jsonl", GOOD_ROWS)

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(LocalFileSystem, "_open", refuse)
    with pytest.raises(DistilflowUserError) as e:
        list(read_rows(str(path)))
    assert str(e.value) == (
        f"{path}: permission denied: this user may not read here; change its permissions or choose another location."
    )


def test_template_placeholder_that_is_not_a_column(tmp_path, sim, earlier_output):
    rows = jsonl(tmp_path / "in" / "rows.jsonl", GOOD_ROWS)
    done = run_flow(tmp_path, sim, "--input", str(rows), "--output", str(earlier_output), "--template", "{{ question }}")
    assert_one_clear_error(done, "the template uses ['question']", "not in columns=['instruction']", "add them to `columns`")
    assert sim.stats()["requests"] == 0
    assert_kept(earlier_output)


def test_template_column_missing_from_the_rows(tmp_path, sim, earlier_output):
    rows = jsonl(tmp_path / "in" / "rows.jsonl", GOOD_ROWS)
    done = run_flow(
        tmp_path, sim, "--input", str(rows), "--output", str(earlier_output),
        "--template", "Q: {{ question }}", "--columns", '["question"]',
    )
    assert_one_clear_error(done, "row 0 has no column(s) ['question'], only ['instruction']",
                           """--template '{{ instruction }}' --columns '["instruction"]'""")
    assert sim.stats()["requests"] == 0
    assert_kept(earlier_output)


@pytest.mark.parametrize(
    ("flags", "key_words"),
    [
        (["--num-generations", "0"], ["--num-generations 0", "greater than or equal to 1", "--help"]),
        (["--run.batch-size", "0"], ["--run.batch-size 0", "greater than or equal to 1"]),
        (["--model.temperature", "9"], ["--model.temperature 9.0", "less than or equal to 2"]),
    ],
)
def test_out_of_range_flag(flags, key_words, tmp_path, sim, earlier_output):
    rows = jsonl(tmp_path / "in" / "rows.jsonl", GOOD_ROWS)
    done = run_flow(tmp_path, sim, "--input", str(rows), "--output", str(earlier_output), *flags)
    line = assert_one_clear_error(done, *key_words)
    assert done.stderr.strip() == line  # refused before any flow run: that line is all there is
    assert sim.stats()["requests"] == 0
    assert_kept(earlier_output)


def test_model_the_server_rejects(tmp_path, sim, earlier_output):
    """Only the server knows its models: the first batch's answer (404) stops the run.

    A configuration error (exit 2, one line naming the fix): not retried, no new batch starts
    after it, and the earlier dataset is kept rather than replaced.
    """
    sim.configure(models=["only-this"])
    rows = jsonl(tmp_path / "in" / "rows.jsonl", GOOD_ROWS)
    done = run_flow(
        tmp_path, sim, "--input", str(rows), "--output", str(earlier_output), "--model.model", "other",
        "--run.batch-size", "2", "--run.max-concurrent-batches", "1",
    )
    assert_one_clear_error(
        done, "Nothing was written", "is as it was before the run", "HTTP 404",
        "The model 'other' does not exist", "--model.model", f"GET {sim.base_url}/models", status=2,
    )
    stats = sim.stats()
    # the first batch's two requests go out together; the second may or may not leave before the
    # first 404 cancels it. Nothing after that batch.
    assert 1 <= stats["requests"] <= 2
    assert stats["by_status"] == {"404": stats["requests"]}
    assert_kept(earlier_output)


def test_output_under_a_file(tmp_path, sim):
    rows = jsonl(tmp_path / "in" / "rows.jsonl", GOOD_ROWS)
    blocker = tmp_path / "out"
    blocker.write_bytes(EARLIER)
    done = run_flow(tmp_path, sim, "--input", str(rows), "--output", str(blocker / "rows.jsonl"))
    assert_one_clear_error(done, f"Output {blocker}/rows.jsonl: part of the path is a file, not a directory",
                           "choose another path")
    assert sim.stats()["requests"] == 0
    assert blocker.read_bytes() == EARLIER
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_output_where_no_file_can_be_made(tmp_path, sim):
    """/proc exists but takes no new files: the output is named as the output, not as a missing input."""
    rows = jsonl(tmp_path / "in" / "rows.jsonl", GOOD_ROWS)
    done = run_flow(tmp_path, sim, "--input", str(rows), "--output", "/proc/rows.jsonl")
    line = assert_one_clear_error(done, "Output /proc/rows.jsonl: no file can be made there", "choose another path")
    assert "check the path" not in line
    assert sim.stats()["requests"] == 0


def test_output_in_a_bucket_that_does_not_exist(tmp_path, sim, s3):
    rows = jsonl(tmp_path / "in" / "rows.jsonl", GOOD_ROWS)
    output = "s3://no-such-bucket-distilflow/out/rows.jsonl"
    done = run_flow(tmp_path, sim, "--input", str(rows), "--output", output)
    assert_one_clear_error(done, output, "bucket 'no-such-bucket-distilflow' does not exist", "create it or fix the URI")
    assert sim.stats()["requests"] == 0
    names = [b["Name"] for b in s3.client().list_buckets()["Buckets"]]
    assert "no-such-bucket-distilflow" not in names


# --- the Python API ----------------------------------------------------------------------------


def llm(sim, **kwargs) -> OpenAILLM:
    return OpenAILLM(model="sim-model", base_url=sim.base_url, api_key="sk-local-test", **kwargs)


def test_unknown_generation_setting(sim):
    with pytest.raises(DistilflowUserError) as e:
        llm(sim, generation_kwargs={"not_a_setting": 1, "temperature": 0.2})
    message = str(e.value)
    assert "does not know the generation setting(s) ['not_a_setting']" in message
    assert "max_new_tokens" in message and "Fix or remove them in `generation_kwargs`" in message
    assert sim.stats()["requests"] == 0


@pytest.mark.parametrize(
    ("rows", "key_words"),
    [
        ([{"instruction": "a"}, {"question": "b"}], ["needs column(s) ['instruction']", "row 1 has only ['question']"]),
        ([{"instruction": "a"}, {"instruction": 3}], ["row 1", "must be a string", "Got: 3."]),
        ([{"instruction": None}], ["row 0", "must be a string", "Got: None."]),
        ([{"instruction": "a"}, "not a row"], ["row 1 is a str, not a dict of columns"]),
        ([], ["There are no input rows"]),
    ],
    ids=["missing column", "int", "None", "not a dict", "no rows"],
)
def test_run_tasks_refuses_bad_rows_before_any_request(rows, key_words, sim):
    task = TextGeneration(llm=llm(sim), input_batch_size=1)
    with pytest.raises(DistilflowUserError) as e:
        run_tasks(task, rows)
    for word in key_words:
        assert word in str(e.value)
    assert sim.stats()["requests"] == 0


@pytest.mark.parametrize(
    ("arguments", "key_words"),
    [
        ({"num_generations": 0}, ["TextGeneration: num_generations=0: Input should be greater than 0", "Fix this argument"]),
        ({"input_batch_size": -5, "num_generations": 0}, ["input_batch_size=-5", "num_generations=0", "Fix these arguments"]),
        ({"template": "{{ question }}"}, ["the template uses ['question']", "add them to `columns`"]),
        ({"template": "{{ instruction "}, ["the template is not valid jinja2", "line 1"]),
        ({"temprature": 0.3}, ["temprature=0.3: Extra inputs are not permitted"]),
    ],
    ids=["num_generations 0", "several", "placeholder", "bad jinja2", "misspelt argument"],
)
def test_task_arguments_refused_in_one_line(arguments, key_words, sim):
    with pytest.raises(DistilflowUserError) as e:
        TextGeneration(llm=llm(sim), **arguments).load()  # templates are checked at load(), as in distilabel
    message = str(e.value)
    assert "\n" not in message
    for word in key_words:
        assert word in message
    if "num_generations" in arguments:
        assert isinstance(e.value, InvalidSettingsError) and isinstance(e.value, ValueError)  # as pydantic's was
    assert sim.stats()["requests"] == 0


@pytest.mark.usefixtures("prefect_api")
def test_flow_called_from_python_fails_with_the_error_not_a_traceback_log(tmp_path, sim, caplog):
    """In-process the flow run ends Failed with the message; calling it plainly still raises the error."""
    from distilflow.flows.text_generation import TextGenerationParams, text_generation

    params = TextGenerationParams(
        input=str(tmp_path / "missing.jsonl"), output=str(tmp_path / "out.jsonl"),
        model={"provider": "openai", "base_url": sim.base_url},
    )
    state = text_generation(params, return_state=True)
    assert state.is_failed() and state.message == f"{tmp_path}/missing.jsonl: no such file or directory; check the path or URI."
    assert isinstance(state.result(raise_on_failure=False), DistilflowUserError)
    with pytest.raises(DistilflowUserError, match="no such file or directory"):
        text_generation(params)
    assert not any("Traceback" in (r.exc_text or "") or r.exc_info for r in caplog.records)
    assert sim.stats()["requests"] == 0 and not (tmp_path / "out.jsonl").exists()
