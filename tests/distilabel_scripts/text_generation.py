# A distilabel 1.5.3 script as its users write it (docs: "Quickstart"); the test renames the package.
from distilabel.models import OpenAILLM
from distilabel.pipeline import Pipeline
from distilabel.steps import KeepColumns, LoadDataFromDicts
from distilabel.steps.tasks import TextGeneration

with Pipeline(name="simple-text-generation-pipeline", description="A simple text generation pipeline") as pipeline:
    load_dataset = LoadDataFromDicts(
        data=[{"instruction": f"Write a haiku about the number {i}."} for i in range(12)], batch_size=5
    )
    text_generation = TextGeneration(
        llm=OpenAILLM(model="gpt-4o-mini", generation_kwargs={"temperature": 0.7, "max_new_tokens": 64}),
        input_batch_size=4,
        output_mappings={"model_name": "generation_model"},
    )
    keep = KeepColumns(columns=["instruction", "generation", "generation_model"])
    load_dataset >> text_generation >> keep

if __name__ == "__main__":
    distiset = pipeline.run(
        parameters={text_generation.name: {"llm": {"generation_kwargs": {"temperature": 0.5}}}},
        use_cache=False,
    )
    train = distiset["default"]["train"]
    assert len(train) == 12 and train.column_names == ["instruction", "generation", "generation_model"], train
    assert all(row["generation"] for row in train)
    print("rows:", len(train))
