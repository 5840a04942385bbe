# distilabel docs: "Image generation" and "Text generation with images".
from distilabel.models.image_generation import OpenAIImageGeneration
from distilabel.models.image_generation.utils import image_from_str, image_to_str
from distilabel.models.llms import OpenAILLM
from distilabel.pipeline import Pipeline
from distilabel.steps import LoadDataFromDicts
from distilabel.steps.tasks import ImageGeneration
from distilabel.steps.tasks.text_generation_with_image import TextGenerationWithImage

with Pipeline(name="image-generation") as pipeline:
    prompts = LoadDataFromDicts(data=[{"prompt": f"A lighthouse at dusk, style {i}"} for i in range(3)])
    draw = ImageGeneration(image_generation_model=OpenAIImageGeneration(model="dall-e-3"))
    prompts >> draw

if __name__ == "__main__":
    rows = pipeline.run(use_cache=False)["default"]["train"]
    assert len(rows) == 3 and all(row["image"] for row in rows)
    picture = image_from_str(rows[0]["image"])
    assert image_to_str(picture) and picture.size[0] > 0
    describe = TextGenerationWithImage(llm=OpenAILLM(model="gpt-4o-mini"), image_type="base64")
    describe.load()
    (described,) = next(describe.process([{"instruction": "What is in it?", "image": rows[0]["image"]}]))
    assert described["generation"], described
    print("rows:", len(rows))
