# distilabel docs: "APIGen" (generate function calls, run them, judge them).
from pathlib import Path

from distilabel.models import OpenAILLM
from distilabel.pipeline import Pipeline
from distilabel.steps import LoadDataFromDicts
from distilabel.steps.tasks import APIGenExecutionChecker, APIGenGenerator, APIGenSemanticChecker
from distilabel.steps.tasks.apigen.utils import load_module_from_path

library = Path(__file__).with_name("functions_library.py")
library.write_text("def add(a: int, b: int) -> int:\n    '''Add two numbers.'''\n    return a + b\n")
assert load_module_from_path(library).add(1, 2) == 3

with Pipeline(name="apigen") as pipeline:
    load = LoadDataFromDicts(data=[{
        "func_name": "add",
        "func_desc": "Add two numbers.",
        "tools": '[{"type": "function", "function": {"name": "add", "description": "Add two numbers.", '
                 '"parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, '
                 '"required": ["a", "b"]}}}]',
        "examples": "",
    }] * 3)
    generate = APIGenGenerator(llm=OpenAILLM(model="gpt-4o-mini"), use_default_structured_output=True)
    execute = APIGenExecutionChecker(libpath=str(library))
    judge = APIGenSemanticChecker(llm=OpenAILLM(model="gpt-4o-mini"))
    load >> generate >> execute >> judge

if __name__ == "__main__":
    rows = pipeline.run(use_cache=False)["default"]["train"]
    assert len(rows) >= 1 and {"keep_row_after_execution_check", "keep_row_after_semantic_check"} <= set(rows[0])
    print("rows:", len(rows))
