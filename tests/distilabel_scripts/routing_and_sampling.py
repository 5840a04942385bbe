# distilabel docs: routing batches to some generators, sampling few-shot rows, combining branches.
import random

from distilabel.models import OpenAILLM
from distilabel.pipeline import Pipeline, routing_batch_function, sample_n_steps
from distilabel.steps import CombineOutputs, DataSampler, GroupColumns, LoadDataFromDicts
from distilabel.steps.generators.data_sampler import DataSampler as SameDataSampler
from distilabel.steps.tasks import TextGeneration

assert DataSampler is SameDataSampler


@routing_batch_function
def random_routing_batch(steps: list[str]) -> list[str]:
    return random.sample(steps, 2)


with Pipeline(name="routing-and-sampling") as pipeline:
    questions = LoadDataFromDicts(data=[{"instruction": f"Question {i}?"} for i in range(10)])
    examples = DataSampler(data=[{"example": f"example {i}"} for i in range(30)], size=2, samples=10, batch_size=4)
    combine = CombineOutputs()
    generations = [TextGeneration(name=f"gen_{i}", llm=OpenAILLM(model=f"model-{i}")) for i in range(3)]
    group = GroupColumns(columns=["generation", "model_name"])
    [questions, examples] >> combine >> sample_n_steps(2) >> generations >> group

if __name__ == "__main__":
    rows = pipeline.run(use_cache=False)["default"]["train"]
    assert len(rows) == 10 and all(len(row["grouped_generation"]) == 2 for row in rows), rows[0]
    assert all(len(row["example"]) == 2 for row in rows)
    print("rows:", len(rows))
