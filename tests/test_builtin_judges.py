"""UltraFeedback, EvolInstruct and TextGenerationWithImage, on the Dummy doubles and the simulator."""

from __future__ import annotations

import base64
import io
import logging
import random
import re

import pytest
from PIL import Image

from tasks.base import EMPTY_OUTPUT_REASON
from tasks.errors import DistilflowUserError
from tasks.evol_instruct import MUTATION_TEMPLATES, EvolInstruct
from tasks.models import DummyLLM, OpenAILLM
from tasks.models.testing import tiny_png
from tasks.text_generation_with_image import TextGenerationWithImage
from tasks.ultrafeedback import UltraFeedback

UF = "ultra_feedback_0"
EVOL = "evol_instruct_0"


def words(messages) -> int:
    """Input tokens as DummyLLM counts them: words of every message."""
    return sum(len(m["content"].split()) for m in messages)


def loaded(task):
    task.load()
    return task


# -- UltraFeedback ---------------------------------------------------------------------------

ROW = {"instruction": "Name a primary colour.", "generations": ["Red.", "Purple, I think."]}


def test_ultrafeedback_json_answer_gives_exact_row():
    answer = '{"ratings": [5, 2], "rationales": ["Correct.", "Purple is secondary."]}'
    task = loaded(UltraFeedback(llm=DummyLLM(responses=[answer])))
    messages, _ = task.format_input(ROW)

    assert next(task.process([ROW])) == [
        {
            **ROW,
            "ratings": [5, 2],
            "rationales": ["Correct.", "Purple is secondary."],
            "model_name": "dummy-llm",
            "distilabel_metadata": {
                f"raw_output_{UF}": answer,
                f"raw_input_{UF}": messages,  # the schema is not part of the recorded input
                f"statistics_{UF}": {"input_tokens": words(messages), "output_tokens": len(answer.split())},
            },
        }
    ]


def test_ultrafeedback_format_input_asks_for_a_schema():
    messages, structured = UltraFeedback(llm=DummyLLM()).format_input(ROW)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "Name a primary colour." in messages[1]["content"]
    assert structured == {
        "format": "json",
        "schema": {
            "type": "object",
            "properties": {
                "ratings": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1, "maximum": 5},
                    "minItems": 2,
                    "maxItems": 2,
                },
                "rationales": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
            },
            "required": ["ratings", "rationales"],
            "additionalProperties": False,
        },
    }


ASPECTS = ("overall-rating", "helpfulness", "honesty", "instruction-following", "truthfulness")


@pytest.mark.parametrize("aspect", ASPECTS)
def test_each_aspect_has_its_own_rubric(aspect):
    prompts = {a: UltraFeedback(llm=DummyLLM(), aspect=a).format_input(ROW)[0][1]["content"] for a in ASPECTS}
    assert sum(p == prompts[aspect] for p in prompts.values()) == 1
    assert all(f"{score}. " in prompts[aspect] for score in range(1, 6))


def test_ultrafeedback_fenced_json_is_accepted():
    answer = 'Here you go:\n```json\n{"ratings": [4, 1], "rationales": ["ok", "wrong"]}\n```'
    [row] = next(loaded(UltraFeedback(llm=DummyLLM(responses=[answer]))).process([ROW]))
    assert (row["ratings"], row["rationales"]) == ([4, 1], ["ok", "wrong"])


def test_ultrafeedback_text_format_without_structured_output():
    answer = (
        "#### Output for Text 1\nRating: 5\nRationale: Red is a primary colour.\n\n"
        "#### Output for Text 2\nRating: 2\nRationale: Purple is not,\nand it hedges.\n"
    )
    task = loaded(UltraFeedback(llm=DummyLLM(responses=[answer]), use_structured_output=False))
    messages = task.format_input(ROW)
    assert isinstance(messages, list) and "#### Output for Text" in messages[1]["content"]

    assert next(task.process([ROW])) == [
        {
            **ROW,
            "ratings": [5, 2],
            "rationales": ["Red is a primary colour.", "Purple is not,\nand it hedges."],
            "model_name": "dummy-llm",
            "distilabel_metadata": {
                f"raw_output_{UF}": answer,
                f"raw_input_{UF}": messages,
                f"statistics_{UF}": {"input_tokens": words(messages), "output_tokens": len(answer.split())},
            },
        }
    ]


@pytest.mark.parametrize(
    "answer, reason",
    [
        ('{"ratings": [4], "rationales": ["ok"]}', "expected 2 ratings (one per generation), got 1"),
        ('{"ratings": [4, 3], "rationales": ["ok"]}', "expected 2 rationales (one per generation), got 1"),
        ('{"ratings": [4, 6], "rationales": ["ok", "too high"]}', "rating 6 for text 2 is outside 1..5"),
        ('{"ratings": [4, 2.5], "rationales": ["a", "b"]}', "rating 2 is not an integer"),
        ("I liked both.", "unparsable judge output"),
        ('{"ratings": [4, ', "unparsable judge output"),
        ("#### Output for Text 1\nRating: 4\nRationale: ok\n", "expected 2 ratings"),
    ],
)
def test_ultrafeedback_bad_answer_falls_back_with_reason(answer, reason):
    task = loaded(UltraFeedback(llm=DummyLLM(responses=[answer])))
    [row] = next(task.process([ROW]))
    metadata = row.pop("distilabel_metadata")
    assert row == {**ROW, "ratings": None, "rationales": None, "model_name": "dummy-llm"}
    assert metadata[f"raw_output_{UF}"] == answer
    assert metadata[f"fallback_reason_{UF}"].startswith("ValueError: ")
    assert reason in metadata[f"fallback_reason_{UF}"]


def test_ultrafeedback_none_generation_is_shown_empty_and_rated_none():
    row = {"instruction": "Say hi.", "generations": ["Hi!", None, "Hello."]}
    answer = '{"ratings": [5, 1, 4], "rationales": ["Good.", "No answer.", "Fine."]}'
    task = loaded(UltraFeedback(llm=DummyLLM(responses=[answer])))
    user = task.format_input(row)[0][1]["content"]
    assert "<text_2>\n\n</text_2>" in user

    [out] = next(task.process([row]))
    assert out["ratings"] == [5, None, 4]
    assert out["rationales"] == ["Good.", None, "Fine."]

    text = (
        "#### Output for Text 1\nRating: 5\nRationale: a\n"
        "#### Output for Text 2\nRating: N/A\nRationale: none\n"
        "#### Output for Text 3\nRating: 3\nRationale: c"
    )
    assert task.format_output(text, row) == {"ratings": [5, None, 3], "rationales": ["a", None, "c"]}


@pytest.mark.parametrize(
    "row, message",
    [
        ({"instruction": 3, "generations": ["a"]}, "column 'instruction' must be a string"),
        ({"instruction": "q", "generations": []}, "column 'generations' must be a non-empty list"),
        ({"instruction": "q", "generations": "a"}, "column 'generations' must be a non-empty list"),
        ({"instruction": "q", "generations": ["a", 7]}, "generations[1] must be a string or None"),
    ],
)
def test_ultrafeedback_rejects_bad_rows_before_any_request(row, message):
    llm = DummyLLM()
    with pytest.raises(DistilflowUserError, match=re.escape(message)):
        next(loaded(UltraFeedback(llm=llm)).process([row]))
    assert llm.calls == 0


def test_ultrafeedback_print_renders_the_prompt(capsys):
    task = loaded(UltraFeedback(llm=DummyLLM()))
    task.print()
    out = capsys.readouterr().out
    assert "<PLACEHOLDER_INSTRUCTION>" in out and "<PLACEHOLDER_GENERATION_2>" in out
    task.print(task.format_input(ROW))
    assert "Name a primary colour." in capsys.readouterr().out


def test_ultrafeedback_against_the_simulator_over_http():
    from tasks.simulator import Simulator

    row = {"instruction": "Explain rain.", "generations": ["Water falls.", "Clouds cry.", "Condensation."]}
    with Simulator() as sim:
        task = loaded(UltraFeedback(llm=OpenAILLM(model="sim", base_url=sim.base_url)))
        try:
            [out] = next(task.process([row]))
        finally:
            task.unload()
    assert f"fallback_reason_{UF}" not in out["distilabel_metadata"], out["distilabel_metadata"]
    assert len(out["ratings"]) == 3 and all(type(r) is int and 1 <= r <= 5 for r in out["ratings"])
    assert len(out["rationales"]) == 3 and all(isinstance(r, str) for r in out["rationales"])
    assert out["model_name"] == "sim"


# -- EvolInstruct ----------------------------------------------------------------------------

_GIVEN = re.compile(r"#Given Prompt#:\n(.*?)\n\n#", re.DOTALL)


def evolver(messages, _index):
    """Round prompts get the given instruction with a '+' appended; anything else is answered."""
    content = messages[0]["content"]
    given = _GIVEN.search(content)
    return f"{given.group(1)}+" if given else f"answer to {content}"


def mutation(original: str, current: str, round: int):
    name = random.Random(f"42:{original}:{round}").choice(list(MUTATION_TEMPLATES))
    return [{"role": "user", "content": MUTATION_TEMPLATES[name].replace("<PROMPT>", current)}]


def statistics(prompts, answers):
    return {
        "input_tokens": [words(p) for p in prompts],
        "output_tokens": [len(a.split()) for a in answers],
    }


def test_evol_instruct_two_rounds_keeps_the_last():
    llm = DummyLLM(responses=evolver)
    task = loaded(EvolInstruct(llm=llm, num_evolutions=2))
    prompts = [mutation("Add 2 and 2.", "Add 2 and 2.", 0), mutation("Add 2 and 2.", "Add 2 and 2.+", 1)]
    assert task.format_input({"instruction": "Add 2 and 2."}) == prompts[0]

    assert next(task.process([{"instruction": "Add 2 and 2."}])) == [
        {
            "instruction": "Add 2 and 2.",
            "evolved_instruction": "Add 2 and 2.++",
            "model_name": "dummy-llm",
            "distilabel_metadata": {
                f"raw_output_{EVOL}": ["Add 2 and 2.+", "Add 2 and 2.++"],
                f"raw_input_{EVOL}": prompts,
                f"statistics_{EVOL}": statistics(prompts, ["Add 2 and 2.+", "Add 2 and 2.++"]),
            },
        }
    ]
    assert llm.calls == 2


@pytest.mark.parametrize("include_original", [False, True])
def test_evol_instruct_store_evolutions_with_answers(include_original):
    llm = DummyLLM(responses=evolver)
    task = loaded(
        EvolInstruct(
            llm=llm,
            num_evolutions=2,
            store_evolutions=True,
            generate_answers=True,
            include_original_instruction=include_original,
        )
    )
    assert task.get_outputs() == {"evolved_instructions": True, "answers": True, "model_name": True}
    prompts = [
        mutation("q", "q", 0),
        mutation("q", "q+", 1),
        [{"role": "user", "content": "q+"}],
        [{"role": "user", "content": "q++"}],
    ]
    texts = ["q+", "q++", "answer to q+", "answer to q++"]

    assert next(task.process([{"instruction": "q"}])) == [
        {
            "instruction": "q",
            "evolved_instructions": (["q"] if include_original else []) + ["q+", "q++"],
            "answers": ["answer to q+", "answer to q++"],
            "model_name": "dummy-llm",
            "distilabel_metadata": {
                f"raw_output_{EVOL}": texts,
                f"raw_input_{EVOL}": prompts,
                f"statistics_{EVOL}": statistics(prompts, texts),
            },
        }
    ]
    assert llm.calls == 3  # two rounds, one answer call for the batch


def test_evol_instruct_answer_to_the_last_instruction():
    llm = DummyLLM(responses=evolver)
    task = loaded(EvolInstruct(llm=llm, num_evolutions=2, generate_answers=True, add_raw_input=False))
    rows = next(task.process([{"instruction": "a"}, {"instruction": "b"}]))
    pairs = [(r["evolved_instruction"], r["answer"]) for r in rows]
    assert pairs == [("a++", "answer to a++"), ("b++", "answer to b++")]
    assert rows[0]["distilabel_metadata"][f"raw_output_{EVOL}"] == ["a+", "a++", "answer to a++"]
    assert len(rows[0]["distilabel_metadata"][f"statistics_{EVOL}"]["input_tokens"]) == 3
    assert f"raw_input_{EVOL}" not in rows[0]["distilabel_metadata"]
    assert llm.calls == 3


def test_evol_instruct_is_the_same_whatever_the_batch():
    rows = [{"instruction": f"Task number {i}: explain topic {i * 7}."} for i in range(12)]

    def run(batch_size):
        task = EvolInstruct(llm=DummyLLM(), num_evolutions=3, store_evolutions=True, input_batch_size=batch_size)
        loaded(task)
        return [row for batch in task.process(rows) for row in batch], task.llm.calls

    one_by_one, calls_1 = run(1)
    by_ten, calls_10 = run(10)
    assert one_by_one == by_ten
    assert (calls_1, calls_10) == (36, 6)
    first_templates = {r["distilabel_metadata"][f"raw_input_{EVOL}"][0][0]["content"][:60] for r in one_by_one}
    assert len(first_templates) > 1  # templates vary across rows


def test_evol_instruct_empty_round_falls_back_and_stops(caplog):
    def responses(messages, index):
        answer = evolver(messages, index)
        return "  " if answer == "bad+" else (None if answer == "worse++" else answer)

    llm = DummyLLM(responses=responses)
    task = loaded(EvolInstruct(llm=llm, num_evolutions=2, generate_answers=True))
    with caplog.at_level(logging.WARNING, logger="distilflow.tasks"):
        good, bad, worse = next(task.process([{"instruction": i} for i in ("good", "bad", "worse")]))

    assert (good["evolved_instruction"], good["answer"]) == ("good++", "answer to good++")
    assert f"fallback_reason_{EVOL}" not in good["distilabel_metadata"]
    for row, raw in ((bad, ["  "]), (worse, ["worse+", None])):
        metadata = row.pop("distilabel_metadata")
        expected = {"evolved_instruction": None, "answer": None, "model_name": "dummy-llm"}
        assert row == {"instruction": row["instruction"], **expected}
        assert metadata[f"raw_output_{EVOL}"] == raw
        assert len(metadata[f"raw_input_{EVOL}"]) == len(raw)
        assert len(metadata[f"statistics_{EVOL}"]["output_tokens"]) == len(raw)
        assert metadata[f"fallback_reason_{EVOL}"] == EMPTY_OUTPUT_REASON
    assert llm.calls == 3
    assert sum("evolution round" in r.getMessage() for r in caplog.records) == 2


def test_evol_instruct_rejects_bad_settings():
    with pytest.raises(DistilflowUserError, match="num_generations must be 1"):
        EvolInstruct(llm=DummyLLM(), num_generations=2)
    with pytest.raises(DistilflowUserError, match="<PROMPT>"):
        EvolInstruct(llm=DummyLLM(), mutation_templates={"PLAIN": "Make it harder."})
    with pytest.raises(DistilflowUserError, match="column 'instruction' must be a string"):
        next(loaded(EvolInstruct(llm=DummyLLM())).process([{"instruction": None}]))


def test_evol_instruct_print(capsys):
    loaded(EvolInstruct(llm=DummyLLM())).print()
    assert "<PLACEHOLDER_INSTRUCTION>" in capsys.readouterr().out


# -- TextGenerationWithImage -----------------------------------------------------------------

PNG = tiny_png("x")


def image_part(messages):
    return messages[-1]["content"][1]["image_url"]["url"]


def test_image_url_is_sent_as_is_with_the_rendered_text():
    task = TextGenerationWithImage(llm=DummyLLM(), system_prompt="Be brief.", template="Describe: {{ instruction }}")
    assert task.get_inputs() == {"instruction": True, "system_prompt": False, "image": True}
    assert task.format_input({"instruction": "the cat", "image": "https://example.com/cat.jpg"}) == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe: the cat"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
        },
    ]


def test_image_row_is_processed():
    task = loaded(TextGenerationWithImage(llm=DummyLLM(responses=["A cat."])))
    row = {"instruction": "What is it?", "image": "https://example.com/cat.jpg"}
    [out] = next(task.process([row]))
    assert out == {
        **row,
        "generation": "A cat.",
        "model_name": "dummy-llm",
        "distilabel_metadata": {
            "raw_output_text_generation_with_image_0": "A cat.",
            "raw_input_text_generation_with_image_0": task.format_input(row),
            "statistics_text_generation_with_image_0": {"input_tokens": 3, "output_tokens": 2},
        },
    }


@pytest.mark.parametrize(
    "data, kind",
    [
        (base64.b64decode(PNG), "png"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 12, "jpeg"),
        (b"RIFF\x10\0\0\0WEBPVP8 ", "webp"),
        (b"GIF89a" + b"\0" * 6, "gif"),
        (b"not an image header", "jpeg"),
    ],
)
def test_base64_image_becomes_a_data_uri_of_its_format(data, kind):
    encoded = base64.b64encode(data).decode()
    task = TextGenerationWithImage(llm=DummyLLM(), image_type="base64")
    url = image_part(task.format_input({"instruction": "?", "image": encoded}))
    assert url == f"data:image/{kind};base64,{encoded}"


def test_pil_image_becomes_a_png_data_uri():
    image = Image.new("CMYK", (3, 2))
    task = TextGenerationWithImage(llm=DummyLLM(), image_type="PIL")
    url = image_part(task.format_input({"instruction": "?", "image": image}))
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    decoded = Image.open(io.BytesIO(base64.b64decode(url[len(prefix):])))
    assert (decoded.format, decoded.size) == ("PNG", (3, 2))


@pytest.mark.parametrize(
    "image_type, image, message",
    [
        ("url", Image.new("RGB", (1, 1)), "column 'image' must be a URL string"),
        ("url", PNG, "column 'image' must be a URL string"),
        ("url", None, "column 'image' must be a URL string"),
        ("base64", "not base64 at all!", "column 'image' is not valid base64"),
        ("base64", b"\x89PNG", "column 'image' must be a base64 string"),
        ("base64", "", "column 'image' is empty"),
        ("PIL", PNG, "column 'image' must be a PIL.Image.Image"),
    ],
)
def test_bad_images_are_rejected_before_any_request(image_type, image, message):
    llm = DummyLLM()
    task = loaded(TextGenerationWithImage(llm=llm, image_type=image_type))
    with pytest.raises(DistilflowUserError, match=re.escape(message)):
        next(task.process([{"instruction": "?", "image": image}]))
    assert llm.calls == 0


def test_image_cannot_be_a_template_column():
    with pytest.raises(DistilflowUserError, match="'image' is the image column"):
        TextGenerationWithImage(llm=DummyLLM(), template="{{ image }}", columns=["image"])


@pytest.mark.parametrize("image_type", ["url", "base64", "PIL"])
def test_image_task_print(image_type, capsys):
    TextGenerationWithImage(llm=DummyLLM(), image_type=image_type).print()
    out = capsys.readouterr().out
    assert "<PLACEHOLDER_INSTRUCTION>" in out and "[image: " in out
