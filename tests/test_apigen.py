"""APIGen: APIGenGenerator, APIGenExecutionChecker, APIGenSemanticChecker and KeepPassingRows, on hand-written answers."""

from __future__ import annotations

import inspect
import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from distilflow.steps.tasks.apigen.generator import APIGenGenerator
from distilflow.steps.tasks.apigen.semantic_checker import APIGenSemanticChecker
from distilflow.errors import DistilflowUserError
from distilflow.models import DummyLLM
from distilflow.steps.tasks.apigen.utils import execute_from_response, load_module_from_path
from distilflow.steps.tasks.apigen import APIGenExecutionChecker
from distilflow.local_server import process_alive
from distilflow.steps.filtering import KeepPassingRows

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "flows" / "data" / "apigen_functions.py"
FUNCTIONS = ROOT / "flows" / "data" / "apigen_functions.jsonl"
GEN, JUDGE = "a_p_i_gen_generator_0", "a_p_i_gen_semantic_checker_0"

TOOLS = json.dumps([{"type": "function", "function": {
    "name": "final_velocity", "description": "Velocity after uniform acceleration.",
    "parameters": {"type": "object", "properties": {"initial_velocity": {"type": "number"},
                                                    "acceleration": {"type": "number"}, "time": {"type": "number"}},
                   "required": ["initial_velocity", "acceleration", "time"]}}}])
ROW = {
    "examples": '## Query:\nWhat is 2 + 3?\n## Answers:\n[{"name": "add", "arguments": {"a": 2, "b": 3}}]',
    "func_name": "final_velocity",
    "func_desc": "Velocity after uniform acceleration.",
    "tools": TOOLS,
}
CALLS = [
    {"name": "final_velocity", "arguments": {"initial_velocity": 10, "acceleration": 2, "time": 3}},
    {"name": "final_velocity", "arguments": {"initial_velocity": 0, "acceleration": 9.8, "time": 2}},
]
ANSWER = json.dumps([{"query": "How fast after 3 s from 10 m/s at 2 m/s^2, and after 2 s of free fall?", "answers": CALLS}])


def words(messages) -> int:
    return sum(len(m["content"].split()) for m in messages)


def loaded(step):
    step.load()
    return step


class RecordingLLM(DummyLLM):
    """DummyLLM with a `structured_output` field (as OpenAILLM has); records what it is asked."""

    structured_output: Any = None
    asked: list = Field(default_factory=list)

    def generate(self, inputs, num_generations=1, **kwargs):
        self.asked.extend(inputs)
        return super().generate(inputs, num_generations, **kwargs)


# -- APIGenGenerator -----------------------------------------------------------------------------


def test_generator_row_from_a_hand_written_answer():
    task = loaded(APIGenGenerator(llm=DummyLLM(responses=[ANSWER]), number=2))
    messages = task.format_input(ROW)
    assert next(task.process([ROW])) == [
        {
            **ROW,
            "query": "How fast after 3 s from 10 m/s at 2 m/s^2, and after 2 s of free fall?",
            "answers": json.dumps(CALLS),
            "model_name": "dummy-llm",
            "distilabel_metadata": {
                f"raw_output_{GEN}": ANSWER,
                f"raw_input_{GEN}": messages,
                f"statistics_{GEN}": {"input_tokens": words(messages), "output_tokens": len(ANSWER.split())},
            },
        }
    ]
    assert task.outputs == ["query", "answers", "model_name"]
    assert task.get_inputs() == {"examples": True, "func_name": True, "func_desc": True, "tools": False}


def test_generator_prompt_names_the_function_its_tool_and_the_number_of_calls():
    system, user = (m["content"] for m in APIGenGenerator(llm=DummyLLM(), number=3).format_input(ROW))
    assert "function calls" in system
    assert ROW["examples"] in user and "`final_velocity`" in user and ROW["func_desc"] in user
    assert f"respect the order of the parameters):\n{TOOLS}" in user
    assert "multiple parallel queries" in user and "Now please generate 3 diverse requests" in user
    one = APIGenGenerator(llm=DummyLLM(), use_tools=False).format_input(ROW)[1]["content"]
    assert TOOLS not in one and "multiple parallel queries" not in one and "Now please generate 1 diverse query" in one
    structured = APIGenGenerator(llm=DummyLLM(), use_default_structured_output=True).format_input(ROW)[1]["content"]
    assert '{"pairs": [' in structured and '{"pairs": [' not in one


@pytest.mark.parametrize(
    "answer",
    [
        json.dumps({"pairs": json.loads(ANSWER)}),  # structured output
        f"Here you are:\n```json\n{ANSWER}\n```",  # fenced, with words around it
        json.dumps(json.loads(ANSWER)[0]),  # one pair, not in a list
    ],
)
def test_generator_reads_every_form_of_the_answer(answer):
    task = APIGenGenerator(llm=DummyLLM())
    assert task.format_output(answer, ROW) == {"query": json.loads(ANSWER)[0]["query"], "answers": json.dumps(CALLS)}
    assert task.fallback_reason(answer, ROW, {}) is None


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("no JSON at all", "the answer is not JSON"),
        ('{"pairs": []}', "no list of query and answers pairs"),
        ('[{"query": "q"}]', "the first pair is not"),
        ('[{"query": 3, "answers": []}]', "the first pair is not"),
    ],
)
def test_generator_bad_answers_become_fallback_rows_with_a_reason(answer, reason):
    task = loaded(APIGenGenerator(llm=DummyLLM(responses=[answer]), number=2))
    [row] = next(task.process([ROW]))
    assert row["query"] is None and row["answers"] == "[null, null]"  # distilabel's: one null per call asked for
    assert row["model_name"] == "dummy-llm"
    assert reason in row["distilabel_metadata"][f"fallback_reason_{GEN}"]


def test_generator_number_choice_is_made_from_the_row_so_reruns_ask_the_same():
    task = APIGenGenerator(llm=DummyLLM(), number=[1, 2, 3, 4])
    rows = [{**ROW, "func_name": f"f{i}"} for i in range(40)]
    chosen = [task.number_for(row) for row in rows]
    assert chosen == [task.number_for(row) for row in rows] and set(chosen) == {1, 2, 3, 4}
    assert {APIGenGenerator(llm=DummyLLM(), number={2: 1.0, 5: 0.0}).number_for(r) for r in rows} == {2}


@pytest.mark.parametrize("number", [0, [], [1, 0], {1: -1.0}, {2: 0.0}])
def test_generator_refuses_a_bad_number(number):
    with pytest.raises(DistilflowUserError, match="number="):
        APIGenGenerator(llm=DummyLLM(), number=number)


def test_generator_request_schema_is_narrowed_to_the_row_while_the_prompt_stays_a_chat():
    llm = RecordingLLM(responses=[json.dumps({"pairs": json.loads(ANSWER)})])
    task = loaded(APIGenGenerator(llm=llm, number=2, use_default_structured_output=True))
    assert llm.structured_output == {"format": "json", "schema": task.get_structured_output()}
    assert isinstance(task.format_input(ROW), list)  # distilabel's shape
    [row] = next(task.process([ROW]))
    [(chat, structured)] = llm.asked
    assert chat == row["distilabel_metadata"][f"raw_input_{GEN}"]
    answers = structured["schema"]["properties"]["pairs"]["items"]["properties"]["answers"]
    assert answers["minItems"] == answers["maxItems"] == 2
    assert answers["items"]["properties"]["name"] == {"type": "string", "enum": ["final_velocity"]}
    assert answers["items"]["properties"]["arguments"] == json.loads(TOOLS)[0]["function"]["parameters"]
    # a schema set on the model by hand is left alone
    own = {"format": "json", "schema": {"type": "object"}}
    hand = RecordingLLM(responses=[ANSWER], structured_output=own)
    next(loaded(APIGenGenerator(llm=hand, use_default_structured_output=True)).process([ROW]))
    assert isinstance(hand.asked[0], list)


def test_generator_without_a_tool_schema_asks_for_any_arguments_of_the_named_function():
    task = loaded(APIGenGenerator(llm=RecordingLLM(), use_default_structured_output=True))
    schema = task.row_structured_output({**ROW, "tools": '[{"name": "final_velocity", "parameters": {"t": {"type": "float"}}}]'})
    call = schema["schema"]["properties"]["pairs"]["items"]["properties"]["answers"]["items"]
    assert call["properties"]["name"]["enum"] == ["final_velocity"]
    assert call["properties"]["arguments"]["additionalProperties"] == {"type": "string"}


def test_generator_refuses_a_row_without_its_text_before_any_request():
    task = loaded(APIGenGenerator(llm=DummyLLM()))
    with pytest.raises(DistilflowUserError, match="column 'func_desc' must be a string"):
        next(task.process([{**ROW, "func_desc": None}]))
    assert task.llm.calls == 0


# -- APIGenExecutionChecker ----------------------------------------------------------------------


def test_generated_calls_execute_against_the_shipped_functions():
    """Hand-written generator output whose calls are valid: every call runs and its result is recorded."""
    generator = loaded(APIGenGenerator(llm=DummyLLM(responses=[ANSWER]), number=2))
    generated = next(generator.process([ROW]))
    checker = loaded(APIGenExecutionChecker(libpath=str(LIBRARY)))
    [row] = next(checker.process(generated))
    assert row == {**generated[0], "keep_row_after_execution_check": True, "execution_result": ["16", "19.6"]}
    assert checker.outputs == ["keep_row_after_execution_check", "execution_result"]


def _checked(answers, libpath=LIBRARY, **settings) -> dict:
    checker = loaded(APIGenExecutionChecker(libpath=str(libpath), **settings))
    [row] = next(checker.process([{"query": "q", "answers": answers}]))
    assert row["query"] == "q" and list(row) == ["query", "answers", "keep_row_after_execution_check", "execution_result"]
    return {"keep": row["keep_row_after_execution_check"], "results": row["execution_result"]}


@pytest.mark.parametrize(
    "calls, results",
    [
        ([{"name": "mean", "arguments": {"numbers": [1, 2, 6]}}], ["3.0"]),
        ([{"name": "mean", "arguments": {"numbers": "[1, 2, 6]"}}], ["3.0"]),  # a literal in a string
        ([{"name": "binary_addition", "arguments": {"a": "101", "b": "11"}}], ["1000"]),  # str parameters stay text
        ([{"name": "compound_interest", "arguments": {"years": 1, "annual_rate": 0.12, "principal": 100}}], ["112.68"]),
        ([{"name": "permutation_count", "arguments": {"total": 5, "chosen": 2}}], ["20"]),  # other names: by position
        ([{"name": "is_leap_year", "arguments": {"year": 2000}}, {"name": "count_words", "arguments": {"text": "a b"}}],
         ["True", "2"]),
    ],
)
def test_valid_calls_keep_the_row(calls, results):
    assert _checked(json.dumps(calls)) == {"keep": True, "results": results}


@pytest.mark.parametrize(
    "answers, results",
    [
        (None, ["No answers were provided."]),
        ("", ["No answers were provided."]),
        ("[null]", ["Nothing was generated for this call."]),
        ("[]", ["The answers hold no call."]),
        ("not json", ["The answers are not valid JSON: Expecting value: line 1 column 1 (char 0)"]),
        ('"text"', ["The answers are a str, not a list of calls."]),
        ('[{"name": "nope", "arguments": {}}]', ["Function 'nope' not found."]),
        ('[{"arguments": {"x": 1}}]', ["Function None not found."]),
        ('["mean"]', ["'mean' is not a call: an object with a name and arguments."]),
        ('[{"name": "mean", "arguments": {}}]', ["mean() missing 1 required positional argument: 'numbers'"]),
        ('[{"name": "mean", "arguments": {"numbers": []}}]', ["the mean of no numbers is undefined"]),
        ('[{"name": "binary_addition", "arguments": {"a": "12", "b": "1"}}]', ["invalid literal for int() with base 2: '12'"]),
        ('[{"name": "count_words", "arguments": "text"}]',
         ["the arguments are a str, not a JSON object of parameter names to values"]),
        ('[{"name": "is_leap_year", "arguments": {"year": 2024}}, {"name": "nope", "arguments": {}}]',
         ["True", "Function 'nope' not found."]),
    ],
)
def test_bad_answers_and_calls_are_recorded_failures_not_crashes(answers, results):
    assert _checked(answers) == {"keep": False, "results": results}


def test_only_the_librarys_own_public_functions_can_be_called(tmp_path):
    library = tmp_path / "lib.py"
    library.write_text(textwrap.dedent("""
        import os
        from os.path import join
        from shutil import rmtree

        SETTINGS = {"a": 1}

        def _helper():
            return "private"

        def public(x: int) -> int:
            return x + 1
    """))
    for name in ("os", "join", "rmtree", "SETTINGS", "_helper", "__builtins__", "public.__globals__", "../lib"):
        assert _checked(json.dumps([{"name": name, "arguments": {}}]), library)["keep"] is False, name
    assert _checked('[{"name": "public", "arguments": {"x": "41"}}]', library) == {"keep": True, "results": ["42"]}


def test_a_folder_library_runs_only_name_py_files_inside_it(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "double.py").write_text("def double(x):\n    return 2 * x\n")
    (tmp_path / "outside.py").write_text("def outside():\n    return 'ran'\n")
    (tmp_path / "lib" / "broken.py").write_text("def broken(:\n")
    folder = tmp_path / "lib"
    assert _checked('[{"name": "double", "arguments": {"x": 4}}]', folder) == {"keep": True, "results": ["8"]}
    assert _checked('[{"name": "../outside", "arguments": {}}]', folder)["results"] == ["Function '../outside' not found."]
    assert _checked('[{"name": "missing", "arguments": {}}]', folder)["results"] == ["Function 'missing' not found."]
    broken = _checked('[{"name": "broken", "arguments": {}}]', folder)
    assert broken["keep"] is False and broken["results"][0].startswith("Function 'broken' could not be loaded from broken.py")


def test_dangerous_functions_are_refused_unless_allowed(tmp_path):
    library = tmp_path / "lib.py"
    library.write_text("def leave(code: int):\n    return f'would call exit({code})'\n")
    refused = _checked('[{"name": "leave", "arguments": {"code": 1}}]', library)
    assert refused == {"keep": False, "results": ["Function 'leave' was not run: its source uses 'exit(', which may be dangerous."]}
    allowed = _checked('[{"name": "leave", "arguments": {"code": 1}}]', library, check_is_dangerous=False)
    assert allowed == {"keep": True, "results": ["would call exit(1)"]}


def test_a_call_that_runs_too_long_fails_alone_and_off_the_main_thread(tmp_path):
    library = tmp_path / "lib.py"
    library.write_text("import time\n\ndef slow(seconds: float):\n    time.sleep(seconds)\n    return 'done'\n")
    results = {}

    def check():  # batches run in worker threads, where signal-based timeouts cannot work
        results["row"] = _checked('[{"name": "slow", "arguments": {"seconds": 5}}, {"name": "slow", "arguments": {"seconds": 0}}]',
                                  library, timeout=0.2)

    started = time.monotonic()
    worker = threading.Thread(target=check)
    worker.start()
    worker.join(10)
    assert time.monotonic() - started < 3
    assert results["row"] == {"keep": False, "results": ["the call did not finish within 0.2 seconds", "done"]}


RUNAWAY_LIBRARY = """
import os

open(os.environ["IMPORTED_IN"], "w").write(str(os.getpid()))


def pid():
    return os.getpid()


def spin():
    while True:
        pass


def chatty():
    print("a line the protocol must not see")
    return "said"


def ask():
    return input()


def crash():
    os._exit(3)
"""


def test_a_runaway_call_is_stopped_and_the_next_call_gets_a_new_worker(tmp_path, monkeypatch):
    library = tmp_path / "lib.py"
    library.write_text(RUNAWAY_LIBRARY)
    monkeypatch.setenv("IMPORTED_IN", str(tmp_path / "imported-in"))
    checker = loaded(APIGenExecutionChecker(libpath=str(library), timeout=0.5, check_is_dangerous=False))
    try:
        def run(*names: str) -> list[str]:
            calls = json.dumps([{"name": name, "arguments": {}} for name in names])
            [row] = next(checker.process([{"answers": calls}]))
            return row["execution_result"]

        [first] = run("pid")
        worker = int(first)
        # the library's top-level code ran in the worker, not in the run's process
        assert (tmp_path / "imported-in").read_text() == first and worker != os.getpid()
        assert run("spin", "pid")[0] == "the call did not finish within 0.5 seconds"
        assert not process_alive(worker)  # killed, not left spinning
        [second] = run("pid")
        assert int(second) != worker and process_alive(int(second))
        assert run("chatty", "ask") == ["said", "EOF when reading a line"]
        assert run("crash", "pid")[0] == "the call ended the process running it (exit code 3)"
        assert run("pid") != [second]
    finally:
        checker.unload()


def test_a_loaded_checker_pickles_and_the_copy_runs_calls_in_a_worker_of_its_own(tmp_path, monkeypatch):
    library = tmp_path / "lib.py"
    library.write_text(RUNAWAY_LIBRARY)
    monkeypatch.setenv("IMPORTED_IN", str(tmp_path / "imported-in"))
    checker = loaded(APIGenExecutionChecker(libpath=str(library), check_is_dangerous=False))
    copy = pickle.loads(pickle.dumps(checker))  # as a Dask worker receives it
    try:
        row = {"answers": json.dumps([{"name": "pid", "arguments": {}}])}
        [[original]] = [r["execution_result"] for r in next(checker.process([row]))]
        [[copied]] = [r["execution_result"] for r in next(copy.process([row]))]
        assert original != copied and process_alive(int(copied))
    finally:
        checker.unload()
        copy.unload()


def test_a_busy_worker_ends_when_the_run_is_killed(tmp_path):
    library = tmp_path / "lib.py"
    library.write_text(RUNAWAY_LIBRARY)
    script = textwrap.dedent(f"""
        import json
        from distilflow.steps.tasks.apigen import APIGenExecutionChecker

        checker = APIGenExecutionChecker(libpath={str(library)!r}, timeout=600, check_is_dangerous=False)
        checker.load()
        [row] = next(checker.process([{{"answers": json.dumps([{{"name": "pid", "arguments": {{}}}}])}}]))
        print(row["execution_result"][0], flush=True)
        next(checker.process([{{"answers": json.dumps([{{"name": "spin", "arguments": {{}}}}])}}]))
    """)
    run = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "IMPORTED_IN": str(tmp_path / "in")},
                           stdout=subprocess.PIPE, text=True)
    worker = int(run.stdout.readline())
    time.sleep(0.5)  # the worker is spinning now
    run.kill()
    run.wait(timeout=30)
    deadline = time.monotonic() + 30
    while process_alive(worker):
        assert time.monotonic() < deadline, "the worker outlived its run"
        time.sleep(0.1)


def test_an_exiting_function_is_a_failure_not_an_exit(tmp_path):
    library = tmp_path / "lib.py"
    library.write_text("import sys\n\ndef stop():\n    sys.exit(3)\n")
    assert _checked('[{"name": "stop", "arguments": {}}]', library, check_is_dangerous=False) == {"keep": False, "results": ["3"]}


def test_a_missing_or_broken_library_is_refused_when_the_step_loads(tmp_path):
    with pytest.raises(DistilflowUserError, match="neither a .py file nor a folder"):
        APIGenExecutionChecker(libpath=str(tmp_path / "nope.py")).load()
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('bad import')\n")
    with pytest.raises(DistilflowUserError, match="could not be imported .RuntimeError: bad import"):
        APIGenExecutionChecker(libpath=str(broken)).load()


def test_execute_from_response_reads_literals_but_never_evaluates_code():
    module = load_module_from_path(LIBRARY)
    assert execute_from_response(module.mean, {"numbers": "[2, 4]"}) == {"keep": True, "execution_result": "3.0"}
    assert execute_from_response(None, {}) == {"keep": False, "execution_result": "Function not found"}
    sneaky = {"text": "__import__('os').getcwd()"}  # code in a string stays a string
    assert execute_from_response(module.count_words, sneaky) == {"keep": True, "execution_result": "1"}
    assert execute_from_response(module.mean, {"numbers": "[1, 2] + [3]"}) == {
        "keep": False, "execution_result": "unsupported operand type(s) for +: 'int' and 'str'"}


def test_the_example_functions_match_their_tool_schemas():
    module = load_module_from_path(LIBRARY)
    rows = [json.loads(line) for line in FUNCTIONS.read_text().splitlines()]
    assert len(rows) == 8
    for row in rows:
        assert set(row) == {"func_name", "func_desc", "tools", "examples"}
        [tool] = json.loads(row["tools"])
        function = getattr(module, row["func_name"])
        assert tool["function"]["name"] == row["func_name"] and tool["function"]["description"] == row["func_desc"]
        parameters = inspect.signature(function).parameters
        assert list(tool["function"]["parameters"]["properties"]) == list(parameters)
        assert tool["function"]["parameters"]["required"] == [n for n, p in parameters.items() if p.default is p.empty]


# -- APIGenSemanticChecker -----------------------------------------------------------------------

CHECKED = {
    "func_desc": "Velocity after uniform acceleration.",
    "query": "How fast after 3 s from 10 m/s at 2 m/s^2?",
    "answers": json.dumps(CALLS[:1]),
    "execution_result": ["16"],
    "keep_row_after_execution_check": True,
}


def test_semantic_checker_row_from_a_hand_written_answer():
    answer = '{"thought": "", "passes": "yes"}'
    task = loaded(APIGenSemanticChecker(llm=DummyLLM(responses=[answer])))
    messages = task.format_input(CHECKED)
    assert next(task.process([CHECKED])) == [
        {
            **CHECKED,
            "keep_row_after_semantic_check": True,
            "thought": "",
            "model_name": "dummy-llm",
            "distilabel_metadata": {
                f"raw_output_{JUDGE}": answer,
                f"raw_input_{JUDGE}": messages,
                f"statistics_{JUDGE}": {"input_tokens": words(messages), "output_tokens": len(answer.split())},
            },
        }
    ]
    user = messages[1]["content"]
    assert f"- All Available Functions:\n{CHECKED['func_desc']}\n- User Query: {CHECKED['query']}\n" in user
    assert f"- Generated Function Calls: {CHECKED['answers']}\n- Execution Results: [\"16\"]\n" in user


@pytest.mark.parametrize(
    "answer, verdict, thought",
    [
        ('```json\n{"thought": "Wrong time.", "passes": "no"}\n```', False, "Wrong time."),
        ('Verdict: {"thought": "Fine.", "passes": "YES"}', True, "Fine."),
        ('{"passes": true}', True, None),
    ],
)
def test_semantic_checker_reads_verdicts(answer, verdict, thought):
    task = APIGenSemanticChecker(llm=DummyLLM())
    assert task.format_output(answer, CHECKED) == {**CHECKED, "thought": thought, "keep_row_after_semantic_check": verdict}
    assert task.fallback_reason(answer, CHECKED, {}) is None


@pytest.mark.parametrize(
    "answer, reason",
    [("looks fine to me", "not a JSON object"), ('{"thought": "hm", "passes": "maybe"}', "'maybe', not \"yes\" or \"no\""),
     ("[1, 2]", "not a JSON object")],
)
def test_semantic_checker_bad_answers_become_fallback_rows_with_a_reason(answer, reason):
    task = loaded(APIGenSemanticChecker(llm=DummyLLM(responses=[answer])))
    [row] = next(task.process([CHECKED]))
    assert row["thought"] is None and row["keep_row_after_semantic_check"] is None
    assert reason in row["distilabel_metadata"][f"fallback_reason_{JUDGE}"]


# -- KeepPassingRows -----------------------------------------------------------------------------


def test_keep_passing_rows_keeps_rows_every_check_passed():
    checks = ["keep_row_after_execution_check", "keep_row_after_semantic_check"]
    rows = [
        {"id": 0, checks[0]: True, checks[1]: True},
        {"id": 1, checks[0]: True, checks[1]: False},
        {"id": 2, checks[0]: False, checks[1]: True},
        {"id": 3, checks[0]: True, checks[1]: None},  # the judge's answer could not be read
        {"id": 4, checks[0]: True, checks[1]: True},
    ]
    step = KeepPassingRows(columns=checks)
    assert next(step.process(rows)) == [rows[0], rows[4]]
    assert step.get_inputs() == dict.fromkeys(checks, True) and step.outputs == []
    with pytest.raises(DistilflowUserError, match=r"no column\(s\) \['keep_row_after_semantic_check'\]"):
        next(step.process([{checks[0]: True}]))
