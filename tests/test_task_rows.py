"""The distilabel row contract: exact shapes of generated rows (DESIGN.md section 3)."""

from __future__ import annotations

import logging
import pickle
from typing import Any

import pytest

from distilflow.errors import DistilflowUserError

from distilflow.steps.tasks import ImageGeneration, ImageTask, Task, TextGeneration
from distilflow.models import DummyAsyncLLM, DummyImageGenerationModel, DummyLLM
from distilflow.models.testing import tiny_png
from distilflow.pipeline import Pipeline
from distilflow.steps import LoadDataFromDicts


class Gen(Task):
    """The example task of DESIGN.md: question -> answer."""

    @property
    def inputs(self):
        return ["question"]

    @property
    def outputs(self):
        return ["answer"]

    def format_input(self, input: dict[str, Any]):
        return [{"role": "user", "content": input["question"]}]

    def format_output(self, output, input=None):
        if output.startswith("!"):
            raise ValueError(f"cannot parse {output!r}")
        return {"answer": output}


def prompt(q: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": q}]


def meta(name: str, raw: Any, q: str, out_tokens: int | None = None, **extra: Any) -> dict[str, Any]:
    m = {f"raw_output_{name}": raw, f"raw_input_{name}": prompt(q)}
    if out_tokens is not None:
        m[f"statistics_{name}"] = {"input_tokens": 1, "output_tokens": out_tokens}
    m.update(extra)
    return m


def test_ungrouped_rows_have_exactly_the_contract_keys():
    task = Gen(name="gen", llm=DummyLLM(model="m", responses=["a", "b c", "d"]), num_generations=3)
    task.load()
    rows = next(task.process([{"question": "q0"}, {"question": "q1"}]))
    expected = []
    answers = iter(["a", "b c", "d", "a", "b c", "d"])
    for q in ("q0", "q1"):
        for _ in range(3):
            a = next(answers)
            expected.append(
                {"question": q, "answer": a, "model_name": "m", "distilabel_metadata": meta("gen", a, q, len(a.split()))}
            )
    assert rows == expected
    # generations of one input are contiguous
    assert [r["question"] for r in rows] == ["q0"] * 3 + ["q1"] * 3


def test_grouped_rows_hold_lists_of_length_n_and_a_scalar_model_name():
    task = Gen(
        name="gen", llm=DummyLLM(model="m", responses=["a", "b", "c"]), num_generations=3, group_generations=True
    )
    rows = next(task.process([{"question": "q0"}, {"question": "q1"}]))
    assert rows == [
        {
            "question": q,
            "answer": ["a", "b", "c"],
            "model_name": "m",
            "distilabel_metadata": [meta("gen", x, q, 1) for x in ("a", "b", "c")],
        }
        for q in ("q0", "q1")
    ]


def test_raw_input_and_output_can_be_turned_off():
    llm = DummyLLM(model="m", responses=["a"], report_statistics=False)
    task = Gen(name="gen", llm=llm, add_raw_input=False, add_raw_output=False)
    assert next(task.process([{"question": "q"}])) == [{"question": "q", "answer": "a", "model_name": "m"}]
    task = Gen(name="gen", llm=llm, add_raw_input=False)
    assert next(task.process([{"question": "q"}])) == [
        {"question": "q", "answer": "a", "model_name": "m", "distilabel_metadata": {"raw_output_gen": "a"}}
    ]


def test_statistics_key_only_when_the_model_reports_them():
    task = Gen(name="gen", llm=DummyLLM(model="m", responses=["a"], report_statistics=False))
    (row,) = next(task.process([{"question": "q"}]))
    assert set(row["distilabel_metadata"]) == {"raw_output_gen", "raw_input_gen"}


def test_format_error_falls_back_with_raw_output_and_reason(caplog):
    task = Gen(name="gen", llm=DummyLLM(model="m", responses=["ok", "!bad"]), num_generations=2)
    with caplog.at_level(logging.WARNING, logger="distilflow.steps.tasks"):
        rows = next(task.process([{"question": "q"}]))
    assert rows == [
        {"question": "q", "answer": "ok", "model_name": "m", "distilabel_metadata": meta("gen", "ok", "q", 1)},
        {
            "question": "q",
            "answer": None,
            "model_name": "m",
            "distilabel_metadata": meta(
                "gen", "!bad", "q", 1, fallback_reason_gen="ValueError: cannot parse '!bad'"
            ),
        },
    ]
    assert "Task 'gen' failed to format output: ValueError: cannot parse '!bad'" in caplog.text


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_no_text_from_the_model_falls_back(empty):
    task = Gen(name="gen", llm=DummyLLM(model="m", responses=[empty], report_statistics=False))
    rows = next(task.process([{"question": "q"}]))
    assert rows == [
        {
            "question": "q",
            "answer": None,
            "model_name": "m",
            "distilabel_metadata": {
                "raw_output_gen": empty,
                "raw_input_gen": prompt("q"),
                "fallback_reason_gen": "EmptyOutput: the model returned no text",
            },
        }
    ]


def test_grouped_fallback_keeps_every_generation():
    task = Gen(
        name="gen", llm=DummyLLM(model="m", responses=["x", None], report_statistics=False),
        num_generations=2, group_generations=True, add_raw_input=False, add_raw_output=False,
    )
    assert next(task.process([{"question": "q"}])) == [
        {
            "question": "q",
            "answer": ["x", None],
            "model_name": "m",
            "distilabel_metadata": [{}, {"fallback_reason_gen": "EmptyOutput: the model returned no text"}],
        }
    ]


def test_process_yields_one_list_per_input_batch():
    llm = DummyLLM(model="m")
    task = Gen(name="gen", llm=llm, input_batch_size=2)
    batches = list(task.process([{"question": f"q{i}"} for i in range(5)]))
    assert [len(b) for b in batches] == [2, 2, 1]
    assert llm.calls == 3
    assert [r["question"] for b in batches for r in b] == [f"q{i}" for i in range(5)]


def test_async_llm_through_the_sync_adapter_gives_the_same_rows():
    rows = [{"question": f"q{i}"} for i in range(4)]
    sync_rows = next(Gen(name="g", llm=DummyLLM(model="m"), num_generations=2).process(rows))
    async_rows = next(Gen(name="g", llm=DummyAsyncLLM(model="m"), num_generations=2).process(rows))
    assert async_rows == sync_rows


async def test_sync_process_works_inside_a_running_event_loop():
    # a notebook or an async Prefect task already runs a loop; no nest_asyncio needed
    task = Gen(name="g", llm=DummyAsyncLLM(model="m"))
    rows = next(task.process([{"question": "q"}]))
    assert rows[0]["answer"] == DummyLLM(model="m")._answer(prompt("q"), 1)["generations"][0]


def test_name_is_inferred_in_snake_case_with_suffix():
    assert Gen(llm=DummyLLM()).name == "gen_0"
    assert TextGeneration(llm=DummyLLM()).name == "text_generation_0"
    assert ImageGeneration(image_generation_model=DummyImageGenerationModel()).name == "image_generation_0"
    with pytest.raises(Exception, match="pattern"):
        Gen(llm=DummyLLM(), name="bad name!")


def test_missing_input_column_fails_before_any_request():
    llm = DummyLLM()
    task = Gen(name="gen", llm=llm)
    with pytest.raises(DistilflowUserError) as e:
        next(task.process([{"question": "q"}, {"prompt": "p"}]))
    assert "needs column(s) ['question'] but row 1 has only ['prompt']" in str(e.value)
    assert "input_mappings" in str(e.value)
    assert llm.calls == 0


def test_unknown_task_argument_is_rejected():
    with pytest.raises(Exception, match="num_generation"):
        Gen(llm=DummyLLM(), num_generation=2)
    with pytest.raises(Exception, match="greater than 0"):
        Gen(llm=DummyLLM(), num_generations=0)


def test_input_and_output_mappings_rename_columns_both_ways():
    task = Gen(
        name="gen", llm=DummyLLM(model="m", responses=["a"], report_statistics=False),
        input_mappings={"question": "prompt"}, output_mappings={"answer": "response", "model_name": "judge"},
        add_raw_input=False,
    )
    rows = next(task.process_applying_mappings([{"prompt": "p", "question": "kept"}]))
    assert rows == [
        {"prompt": "p", "question": "kept", "response": "a", "judge": "m", "distilabel_metadata": {"raw_output_gen": "a"}}
    ]


def test_mappings_check_keys_and_name_the_mapped_column():
    # checked when the step runs (a run-time parameter may still change its columns), as in distilabel
    bad_input, bad_output = Gen(llm=DummyLLM(), input_mappings={"nope": "x"}), Gen(llm=DummyLLM(), output_mappings={"nope": "x"})
    with pytest.raises(DistilflowUserError, match=r"The input column 'nope' doesn't exist in the inputs of the step"):
        bad_input.verify_inputs_mappings()
    with pytest.raises(DistilflowUserError, match=r"The output column 'nope' doesn't exist in the outputs of the step"):
        bad_output.verify_outputs_mappings()
    with Pipeline(name="p") as pipeline:
        LoadDataFromDicts(data=[{"question": "q"}]) >> Gen(name="gen", llm=DummyLLM(), input_mappings={"nope": "x"})
    with pytest.raises(DistilflowUserError, match=r"The input column 'nope' doesn't exist in the inputs of the step 'gen'"):
        pipeline.validate()  # what run() does before any request
    task = Gen(name="gen", llm=DummyLLM(), input_mappings={"question": "prompt"})
    with pytest.raises(DistilflowUserError, match=r"question \(from column 'prompt'\)"):
        next(task.process_applying_mappings([{"other": 1}]))


def test_mapped_rows_keep_batches_and_generations_aligned():
    task = Gen(
        name="gen", llm=DummyLLM(model="m", report_statistics=False), input_mappings={"question": "q"},
        input_batch_size=2, num_generations=2, add_raw_input=False, add_raw_output=False,
    )
    rows = [r for b in task.process_applying_mappings([{"q": f"x{i}", "question": i} for i in range(3)]) for r in b]
    assert [(r["q"], r["question"]) for r in rows] == [("x0", 0), ("x0", 0), ("x1", 1), ("x1", 1), ("x2", 2), ("x2", 2)]


class Draw(ImageTask):
    @property
    def inputs(self):
        return ["prompt"]

    @property
    def outputs(self):
        return ["image"]

    def format_input(self, input):
        return input["prompt"]

    def format_output(self, output, input=None):
        return {"image": output["images"][0]}


def test_image_task_rows_carry_the_raw_output_dict():
    task = Draw(name="draw", image_generation_model=DummyImageGenerationModel(model="img"), num_generations=2)
    rows = next(task.process([{"prompt": "a cat"}]))
    images = [tiny_png("a cat:0"), tiny_png("a cat:1")]
    assert rows == [
        {
            "prompt": "a cat",
            "image": img,
            "model_name": "img",
            "distilabel_metadata": {"raw_output_draw": {"images": [img]}, "raw_input_draw": "a cat"},
        }
        for img in images
    ]


def test_image_task_grouped():
    task = Draw(
        name="draw", image_generation_model=DummyImageGenerationModel(model="img"), num_generations=2,
        group_generations=True, add_raw_output=False, add_raw_input=False,
    )
    assert next(task.process([{"prompt": "p"}])) == [
        {"prompt": "p", "image": [tiny_png("p:0"), tiny_png("p:1")], "model_name": "img"}
    ]


def test_image_task_refuses_llm():
    with pytest.raises(DistilflowUserError, match="image_generation_model="):
        Draw(image_generation_model=DummyImageGenerationModel(), llm=DummyLLM())
    with pytest.raises(Exception, match="image_generation_model"):
        Draw()


def test_image_generation_builtin_rows():
    task = ImageGeneration(image_generation_model=DummyImageGenerationModel(model="img"), add_raw_output=False)
    assert next(task.process([{"prompt": "a dog"}])) == [
        {
            "prompt": "a dog",
            "image": tiny_png("a dog:0"),
            "model_name": "img",
            "distilabel_metadata": {"raw_input_image_generation_0": "a dog"},
        }
    ]


def test_tasks_pickle_without_losing_settings():
    task = TextGeneration(llm=DummyLLM(model="m"), num_generations=2, template="Q: {{ instruction }}")
    clone = pickle.loads(pickle.dumps(task))
    assert clone.model_dump() == task.model_dump()
    assert next(clone.process([{"instruction": "x"}])) == next(task.process([{"instruction": "x"}]))


def test_a_failing_input_raises_its_own_error_not_a_cancellation():
    import asyncio

    from distilflow.models import AsyncLLM

    class Flaky(AsyncLLM):
        @property
        def model_name(self):
            return "flaky"

        async def agenerate(self, input, num_generations=1, **kwargs):
            if input[0]["content"] == "bad":
                await asyncio.sleep(0.05)
                raise ValueError("the server said no")
            await asyncio.sleep(1)  # still in flight when the failure arrives: cancelled
            return {"generations": ["x"]}

    llm = Flaky()
    with pytest.raises(ValueError, match="the server said no"):
        llm.generate([prompt("slow"), prompt("bad"), prompt("slow")])


class AskingLLM(DummyLLM):
    """Records what each request carried."""

    asked: list = []

    def generate(self, inputs, num_generations=1, **kwargs):
        self.asked.extend(inputs)
        return super().generate(inputs, num_generations, **kwargs)


class SizedAnswer(Gen):
    """A task of a user's own whose schema depends on the row."""

    def row_structured_output(self, input):
        if input["question"] == "free":
            return None
        return {"format": "json", "schema": {"type": "object", "maxProperties": len(input["question"])}}


def test_row_structured_output_rides_with_each_request_while_format_input_stays_a_conversation():
    llm = AskingLLM(asked=[])
    task = SizedAnswer(llm=llm)
    task.load()
    rows = next(task.process([{"question": "abc"}, {"question": "free"}]))
    assert llm.asked == [
        (prompt("abc"), {"format": "json", "schema": {"type": "object", "maxProperties": 3}}),
        prompt("free"),
    ]
    assert task.format_input({"question": "abc"}) == prompt("abc")  # distilabel's shape
    # the metadata keeps the conversation alone, as distilabel's does
    assert [r["distilabel_metadata"]["raw_input_sized_answer_0"] for r in rows] == [prompt("abc"), prompt("free")]


def test_a_format_input_that_brings_its_own_structured_output_keeps_it():
    own = {"format": "json", "schema": {"type": "array"}}

    class Own(SizedAnswer):
        def format_input(self, input):
            return (prompt(input["question"]), own)

    llm = AskingLLM(asked=[])
    task = Own(llm=llm)
    task.load()
    next(task.process([{"question": "abc"}]))
    assert llm.asked == [(prompt("abc"), own)]
