"""Task.print renders the formatted prompt with rich."""

from __future__ import annotations

from distilflow.steps.tasks import ImageGeneration, TextGeneration, task
from distilflow.models import DummyImageGenerationModel, DummyLLM


def test_print_renders_a_sample_prompt(capsys):
    t = TextGeneration(llm=DummyLLM(model="my-model"), system_prompt="You are terse.")
    t.print()
    out = capsys.readouterr().out
    assert "TextGeneration prompt: my-model" in out
    assert "System" in out and "You are terse." in out
    assert "User" in out and "<PLACEHOLDER_INSTRUCTION>" in out
    assert "PLACEHOLDER_SYSTEM_PROMPT" not in out  # optional columns are not sampled


def test_print_a_given_formatted_input(capsys):
    t = TextGeneration(llm=DummyLLM(model="m"))
    t.print(t.format_input({"instruction": "What is 2+2?"}))
    out = capsys.readouterr().out
    assert "What is 2+2?" in out and "PLACEHOLDER" not in out


def test_print_of_decorated_and_image_tasks(capsys):
    @task(inputs=["topic"], outputs=["poem"])
    def Poem(output, input=None):
        """
        ---
        system_prompt: You write poems.
        user_message_template: "A poem about {topic}"
        ---
        """
        return {"poem": output}

    Poem(llm=DummyLLM(model="m")).print()
    ImageGeneration(image_generation_model=DummyImageGenerationModel(model="img")).print()
    out = capsys.readouterr().out
    assert "A poem about <PLACEHOLDER_TOPIC>" in out
    assert "ImageGeneration prompt: img" in out and "<PLACEHOLDER_PROMPT>" in out
