"""distilabel's idioms for custom tasks and its arguments, as distilabel users write them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from jinja2 import Template

from distilflow import (
    DummyImageGenerationModel, DummyLLM, ImageGeneration, InferenceEndpointsLLM, OpenAILLM, Task, TextGeneration,
    run_tasks,
)
from distilflow.errors import InvalidSettingsError
from distilflow.typing import RuntimeParameter


class Annotated(Task):
    inputs: list[str] = ["question"]
    outputs: list[str] = ["answer"]

    def format_input(self, input):
        return [{"role": "user", "content": input["question"]}]

    def format_output(self, output, input=None):
        return {"answer": output}


class Plain(Task):
    inputs = {"question": True, "context": False}
    outputs = ["answer"]

    def format_input(self, input):
        return [{"role": "user", "content": input["question"]}]

    def format_output(self, output, input=None):
        return {"answer": output}


@pytest.mark.parametrize("cls", [Annotated, Plain])
def test_columns_declared_as_class_attributes(cls):
    task = cls(llm=DummyLLM())
    task.load()
    assert "question" in task.get_inputs() and task.get_outputs() == {"answer": True, "model_name": True}
    assert "inputs" not in cls.model_fields  # a declaration of the class, not an argument
    [row] = next(task.process([{"question": "why?"}]))
    assert row["answer"] and row["model_name"] == "dummy-llm"


class FromLoad(Task):
    """Builds its template in load(), as every distilabel built-in task does."""

    @property
    def inputs(self):
        return ["question"]

    @property
    def outputs(self):
        return ["answer"]

    def load(self):
        super().load()
        self._template = Template("Q: {{ question }}")

    def format_input(self, input):
        return [{"role": "user", "content": self._template.render(question=input["question"])}]

    def format_output(self, output, input=None):
        return {"answer": output}


def test_a_template_built_in_load_works_under_run_tasks(tmp_path):
    result = run_tasks(FromLoad(llm=DummyLLM()), [{"question": "a"}, {"question": "b"}], result_storage=str(tmp_path))
    assert result.complete and [r["distilabel_metadata"]["raw_input_from_load_0"][0]["content"] for r in result.rows] == [
        "Q: a", "Q: b"
    ]


@pytest.mark.parametrize(
    "class_name, name",
    [("APIGenGenerator", "a_p_i_gen_generator_0"), ("FormatTextGenerationDPO", "format_text_generation_d_p_o_0"),
     ("TextGeneration", "text_generation_0")],
)
def test_default_names_follow_distilabel_for_consecutive_capitals(class_name, name):
    cls = type(class_name, (Annotated,), {"__module__": __name__})
    task = cls(llm=DummyLLM())
    assert task.name == name
    task.load()
    [row] = next(task.process([{"question": "q"}]))
    assert f"raw_output_{name}" in row["distilabel_metadata"]


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: OpenAILLM(model="m", timeout=-1), ["OpenAILLM: timeout=-1", "greater than 0", "Fix this argument."]),
        (lambda: OpenAILLM(model="m", temprature=0.5), ["temprature=0.5", "Extra inputs are not permitted"]),
        (lambda: DummyLLM(generation_kwargs=3), ["DummyLLM: generation_kwargs=3"]),
    ],
)
def test_a_model_client_refuses_an_argument_in_one_line(make, words):
    with pytest.raises(InvalidSettingsError) as error:
        make()
    assert "\n" not in str(error.value)
    assert all(word in str(error.value) for word in words), str(error.value)
    assert isinstance(error.value, ValueError)


def test_distilabels_model_arguments_are_accepted_and_honoured(caplog):
    with caplog.at_level(logging.WARNING, logger="distilflow.models"):
        llm = InferenceEndpointsLLM(
            model_id="meta-llama/Llama-3.1-8B-Instruct", model_display_name="llama-8b",
            magpie_pre_query_template="llama3",
            structured_output={"format": "json", "schema": {"type": "object"}},
            generation_kwargs={"stop_sequences": ["\n\n"], "do_sample": True, "temperature": 0.3},
            use_offline_batch_generation=True,
        )
    assert llm.model_name == "llama-8b" and llm.answer_identity()["model_name"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert "magpie_pre_query_template is accepted" in caplog.text and "use_offline_batch_generation" in caplog.text
    with pytest.raises(Exception, match="use_magpie_template=True"):
        InferenceEndpointsLLM(model_id="m", use_magpie_template=True, magpie_pre_query_template="llama3")


def test_distilabels_generation_settings_reach_the_server(sim, caplog, monkeypatch):
    sent = []
    ask = OpenAILLM._ask

    async def spy(self, messages, n, params):  # what goes into the request body, then the real request
        sent.append(params)
        return await ask(self, messages, n, params)

    monkeypatch.setattr(OpenAILLM, "_ask", spy)
    llm = InferenceEndpointsLLM(
        base_url=sim.base_url, model_id="sim-model",
        generation_kwargs={"stop_sequences": ["zz"], "do_sample": True, "max_new_tokens": 5, "temperature": 0.2},
    )
    llm.load()
    with caplog.at_level(logging.WARNING, logger="distilflow.models"):
        [out] = llm.generate_outputs([[{"role": "user", "content": "hello"}]], **llm.get_generation_kwargs())
    assert len(out["generations"][0].split()) <= 5 and sim.stats()["requests"] == 1
    assert sent[0]["stop"] == ["zz"] and sent[0]["temperature"] == 0.2 and sent[0]["max_tokens"] == 5
    assert "do_sample" not in sent[0] and "do_sample is a text-generation setting" in caplog.text


def test_runtime_parameters_are_set_by_name(caplog):
    task = TextGeneration(llm=OpenAILLM(model="m", base_url="http://127.0.0.1:1/v1"))
    assert task.runtime_parameters_names["input_batch_size"] is True
    assert task.runtime_parameters_names["llm"]["generation_kwargs"]["temperature"] is True
    task.set_runtime_parameters({"input_batch_size": 7, "llm": {"generation_kwargs": {"temperature": 0.7}, "timeout": 9}})
    assert task.input_batch_size == 7 and task.llm.generation_kwargs == {"temperature": 0.7} and task.llm.timeout == 9
    with caplog.at_level(logging.WARNING, logger="distilflow.steps"):  # ignored with a warning, as in distilabel
        task.set_runtime_parameters({"batch_size": 3})
    assert "has no run-time parameter 'batch_size', so it is ignored; did you mean ['input_batch_size']" in caplog.text
    assert not hasattr(task, "batch_size")

    class WithRuntime(DummyLLM):
        needed: RuntimeParameter[int]

    assert WithRuntime().runtime_parameters_names["needed"] is False  # must be given when the pipeline runs


def test_image_generation_saves_artifacts_as_distilabel_does(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    task = ImageGeneration(image_generation_model=DummyImageGenerationModel(size=4), save_artifacts=True, image_format="PNG")
    task.load()
    [row] = next(task.process([{"prompt": "a white siamese cat"}]))
    assert row["image_path"].startswith("artifacts/image_generation_0/images/") and row["image_path"].endswith(".png")
    assert (tmp_path / row["image_path"]).read_bytes().startswith(b"\x89PNG")
    [plain] = next(ImageGeneration(image_generation_model=DummyImageGenerationModel(size=4)).process([{"prompt": "x"}]))
    assert "image_path" not in plain and not Path("artifacts/image_generation_0/images").joinpath("x").exists()
