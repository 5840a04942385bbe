# distilabel docs: "Define LLMs as local or remote models", a generator step, chat formatting, requirements.
from typing import Any, List

from distilabel.distiset import Distiset
from distilabel.errors import DistilabelUserError
from distilabel.llms import InferenceEndpointsLLM
from distilabel.models import AsyncLLM
from distilabel.models.mixins import MagpieChatTemplateMixin
from distilabel.pipeline import Pipeline
from distilabel.steps import (
    ConversationTemplate,
    FormatChatGenerationSFT,
    GeneratorStep,
    MergeColumns,
    make_generator_step,
    step,
)
from distilabel.steps.base import StepInput
from distilabel.steps.tasks import ChatGeneration
from distilabel.steps.typing import StepOutput
from distilabel.typing import FormattedInput, GenerateOutput, GeneratorStepOutput
from distilabel.utils.requirements import requirements

assert issubclass(DistilabelUserError, ValueError) and InferenceEndpointsLLM and MagpieChatTemplateMixin and StepInput
assert StepOutput


class EchoLLM(AsyncLLM):
    """A model of one's own: answers with the last message, reversed."""

    @property
    def model_name(self) -> str:
        return "echo"

    def load(self) -> None:
        super().load()

    async def agenerate(self, input: FormattedInput, num_generations: int = 1, **kwargs: Any) -> GenerateOutput:
        text = input[-1]["content"][::-1]
        return {"generations": [text] * num_generations, "statistics": {"input_tokens": [1], "output_tokens": [1]}}


@requirements(["pydantic>=2"])
class Turns(GeneratorStep):
    @property
    def outputs(self) -> List[str]:
        return ["instruction", "response"]

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        rows = [{"instruction": f"hello {i}", "response": f"hi {i}"} for i in range(5)]
        yield rows[offset:], True


@step(inputs=["instruction"], outputs=["messages"])
def AsMessages(inputs: StepInput) -> StepOutput:
    yield [{**row, "messages": [{"role": "user", "content": row["instruction"]}]} for row in inputs]


with Pipeline(name="custom-llm") as pipeline:
    turns = Turns()
    chat = ChatGeneration(llm=EchoLLM())
    sft = FormatChatGenerationSFT()
    turns >> AsMessages() >> chat >> sft

with Pipeline(name="merge-columns") as merging:
    load = make_generator_step([{"a": "x", "b": "y", "instruction": "hello", "response": "hi"}])
    load >> MergeColumns(columns=["a", "b"], output_column="ab") >> ConversationTemplate()

if __name__ == "__main__":
    distiset = pipeline.run(use_cache=False)
    assert isinstance(distiset, Distiset)
    rows = distiset["default"]["train"]
    assert len(rows) == 5 and rows[0]["generation"] == "0 olleh", rows[0]
    assert rows[0]["messages"][-1] == {"role": "assistant", "content": "0 olleh"}, rows[0]["messages"]
    merged = merging.run()["default"]["train"][0]
    assert merged["ab"] == ["x", "y"] and merged["conversation"][1] == {"role": "assistant", "content": "hi"}
    print("rows:", len(rows))
