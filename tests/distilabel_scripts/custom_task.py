# distilabel docs: "Define Tasks that rely on LLMs" (a Task subclass and the @task decorator).
from typing import Any, Dict, List, Union

from distilabel.models import OpenAILLM
from distilabel.pipeline import Pipeline
from distilabel.steps import LoadDataFromDicts
from distilabel.steps.tasks import Task, task
from distilabel.steps.tasks.typing import ChatType
from distilabel.typing import ChatType as SameChatType

assert ChatType == SameChatType


class Rephrase(Task):
    @property
    def inputs(self) -> List[str]:
        return ["instruction"]

    def format_input(self, input: Dict[str, Any]) -> ChatType:
        return [{"role": "user", "content": f"Rephrase: {input['instruction']}"}]

    @property
    def outputs(self) -> List[str]:
        return ["rephrased", "model_name"]

    def format_output(self, output: Union[str, None], input: Union[Dict[str, Any], None] = None) -> Dict[str, Any]:
        return {"rephrased": output}


@task(inputs=["rephrased"], outputs=["short"])
def Shorten(output: Union[str, None], input: Union[Dict[str, Any], None] = None) -> Dict[str, Any]:
    """
    ---
    system_prompt: You shorten texts.
    user_message_template: "Shorten this text: {rephrased}"
    ---
    """
    return {"short": output}


with Pipeline(name="custom-task") as pipeline:
    load = LoadDataFromDicts(data=[{"instruction": f"Say hello to person {i}."} for i in range(4)])
    load >> Rephrase(llm=OpenAILLM(model="gpt-4o-mini")) >> Shorten(llm=OpenAILLM(model="gpt-4o-mini"))

if __name__ == "__main__":
    rows = pipeline.run(use_cache=False)["default"]["train"]
    assert len(rows) == 4 and all(row["rephrased"] and row["short"] for row in rows), rows[0]
    metadata = rows[0]["distilabel_metadata"]
    assert {"raw_output_rephrase_0", "raw_input_shorten_0"} <= set(metadata), sorted(metadata)
    print("rows:", len(rows))
