# distilabel docs: "Define Steps for your Pipeline" (a Step subclass, @step, a global step, typing imports).
from __future__ import annotations

from typing import TYPE_CHECKING

from distilabel.mixins.runtime_parameters import RuntimeParameter
from distilabel.pipeline import Pipeline
from distilabel.steps import GlobalStep, LoadDataFromDicts, Step, StepInput, step
from distilabel.steps.base import StepResources
from distilabel.typing import StepColumns

if TYPE_CHECKING:
    from distilabel.typing import StepOutput


class AddLength(Step):
    unit: RuntimeParameter[str] = "chars"

    @property
    def inputs(self) -> StepColumns:
        return ["instruction"]

    @property
    def outputs(self) -> StepColumns:
        return ["length"]

    def process(self, inputs: StepInput) -> "StepOutput":
        for row in inputs:
            row["length"] = len(row["instruction"]) if self.unit == "chars" else len(row["instruction"].split())
        yield inputs


@step(inputs=["length"], outputs=["long"])
def IsLong(inputs: StepInput, threshold: int = 10) -> "StepOutput":
    for row in inputs:
        row["long"] = row["length"] > threshold
    yield inputs


class CountLong(GlobalStep):
    @property
    def inputs(self) -> StepColumns:
        return ["long"]

    @property
    def outputs(self) -> StepColumns:
        return ["long_share"]

    def process(self, inputs: StepInput) -> "StepOutput":
        share = sum(row["long"] for row in inputs) / len(inputs)
        yield [{**row, "long_share": share} for row in inputs]


with Pipeline(name="custom-steps") as pipeline:
    load = LoadDataFromDicts(data=[{"instruction": "word " * i} for i in range(1, 9)], batch_size=3)
    length = AddLength(resources=StepResources(replicas=1))
    load >> length >> IsLong() >> CountLong()

if __name__ == "__main__":
    distiset = pipeline.run(parameters={length.name: {"unit": "words"}, "is_long_0": {"threshold": 4}})
    rows = distiset["default"]["train"]
    assert [row["length"] for row in rows] == list(range(1, 9)), rows
    assert rows[0]["long_share"] == 0.5
    print("rows:", len(rows))
