"""The Distiset a pipeline run returns is distilabel's: Hugging Face datasets, saved and loaded locally and on S3."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from datasets import Dataset, DatasetDict
from flow_runs import llm

from distilflow.distiset import Distiset
from distilflow.errors import DistilflowUserError
from distilflow.pipeline import Pipeline
from distilflow.runner import RunOptions
from distilflow.steps import LoadDataFromDicts
from distilflow.steps.tasks import TextGeneration
from distilflow.utils.card import size_category


def test_a_runs_distiset_is_datasets_with_a_train_split_and_no_column_dropped():
    distiset = Distiset.from_leaves({"gen": [{"a": 1}, {"a": 2, "b": "only here"}]})
    assert list(distiset) == ["default"] and isinstance(distiset["default"], DatasetDict)
    train = distiset["default"]["train"]
    assert isinstance(train, Dataset) and train.column_names == ["a", "b"]
    assert train.to_list() == [{"a": 1, "b": None}, {"a": 2, "b": "only here"}]
    assert distiset.rows() == train.to_list() and train.to_pandas()["a"].tolist() == [1, 2]
    two = Distiset.from_leaves({"x": [{"a": 1}], "y": [{"b": 2}]})
    assert sorted(two) == ["x", "y"]
    with pytest.raises(TypeError, match=r"Distiset 'default': its rows cannot be one table"):
        Distiset.from_leaves({"gen": [{"a": 1}, {"a": "text"}]})


@pytest.mark.usefixtures("prefect_api")
def test_a_pipelines_distiset_round_trips_through_disk_with_its_card(sim, tmp_path):
    with Pipeline(name="to-disk") as pipeline:
        LoadDataFromDicts(data=[{"instruction": f"q{i}"} for i in range(5)]) >> TextGeneration(name="gen", llm=llm(sim))
    distiset = pipeline.run(options=RunOptions(result_storage=str(tmp_path / "answers")))
    # memory-mapped from the Arrow file made of the Parquet file the run wrote, not rows held in memory
    (arrow,) = [Path(f["filename"]) for f in distiset["default"]["train"].cache_files]
    assert arrow.suffix == ".arrow" and distiset.pipeline_path.parent in arrow.parents
    distiset.save_to_disk(tmp_path / "saved")
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == ["default", "distiset_configs"]
    loaded = Distiset.load_from_disk(tmp_path / "saved")
    assert loaded.rows() == distiset.rows() and len(loaded.rows()) == 5
    card = (tmp_path / "saved" / "distiset_configs" / "README.md").read_text()
    metadata = yaml.safe_load(re.findall(r"^---\n(.*?)\n---", card, re.S)[0])
    assert metadata == {"size_categories": "n<1K", "tags": ["synthetic", "distilabel", "rlaif", "distilflow"]}
    assert 'load_dataset("saved", "default", split="train")' in card and '"instruction": "q0"' in card


def test_save_to_disk_and_load_from_disk_on_s3(s3, tmp_path):
    distiset = Distiset.from_leaves({"gen": [{"instruction": f"q{i}", "n": i} for i in range(3)]}).train_test_split(0.5)
    distiset.save_to_disk(s3.uri("runs/one"))
    listed = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix="runs/one/")["Contents"]
    assert any(item["Key"].endswith("distiset_configs/README.md") for item in listed)
    loaded = Distiset.load_from_disk(s3.uri("runs/one"), download_dir=tmp_path / "download")
    assert sorted(loaded["default"]) == ["test", "train"]
    assert sorted(row["n"] for split in loaded["default"].values() for row in split) == [0, 1, 2]


def test_size_categories_follow_the_hubs_names():
    assert [size_category(n) for n in (0, 999, 1_000, 50_000, 2_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "1M<n<10M"]


def test_push_to_hub_then_load_dataset_gives_the_same_rows_with_distilflows_card(hub, monkeypatch):
    import datasets
    from huggingface_hub import DatasetCard

    monkeypatch.setenv("HF_TOKEN", "hf_test")
    distiset = Distiset.from_leaves({"gen_a": [{"instruction": f"q{i}", "generation": f"a{i}"} for i in range(4)],
                                     "gen_b": [{"instruction": "q0", "generation": None}]})
    distiset.push_to_hub("me/pushed")
    for name in ("gen_a", "gen_b"):
        assert datasets.load_dataset("me/pushed", name, split="train").to_list() == distiset.rows(name)
    card = DatasetCard.load("me/pushed", repo_type="dataset")
    assert card.data.tags == ["synthetic", "distilabel", "rlaif", "distilflow"] and card.data.size_categories == "n<1K"
    assert sorted(config["config_name"] for config in card.data.configs) == ["gen_a", "gen_b"]
    assert 'load_dataset("me/pushed", "gen_a", split="train")' in card.text


def test_a_push_that_fails_keeps_the_dataset_on_disk_and_says_how_to_push_it_again(hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    distiset = Distiset.from_leaves({"gen": [{"instruction": "q0"}, {"instruction": "q1"}]})
    hub.refuse_commits(5)  # the Hub is down for a while
    with pytest.raises(DistilflowUserError, match=r"push_to_hub\('me/later'\) failed .*The dataset is saved at") as e:
        distiset.push_to_hub("me/later")
    kept = re.search(r"Distiset.load_from_disk\('([^']+)'\)", str(e.value)).group(1)
    hub.refuse_commits(0)
    Distiset.load_from_disk(kept).push_to_hub("me/later")  # what the message says to run
    import datasets

    assert datasets.load_dataset("me/later", "default", split="train").to_list() == distiset.rows()


def test_a_push_without_a_token_is_refused_naming_the_ways_to_give_one(hub, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "no-login"))  # no stored login either
    with pytest.raises(DistilflowUserError, match=r"No Hugging Face token to push with: pass token=\.\.\., set HF_TOKEN"):
        Distiset.from_leaves({"gen": [{"a": 1}]}).push_to_hub("me/nothing")
    assert hub.repo("me/nothing") is None


@pytest.mark.usefixtures("prefect_api")
def test_load_data_from_hub_feeds_a_pipeline_from_the_hub(hub, sim, monkeypatch, tmp_path):
    import datasets

    from distilflow.steps import LoadDataFromHub

    monkeypatch.setenv("HF_TOKEN", "hf_test")
    datasets.Dataset.from_list([{"instruction": f"q{i}"} for i in range(9)]).push_to_hub("me/prompts")
    assert LoadDataFromHub(repo_id="me/prompts").outputs == ["instruction"]  # from the card, before loading
    for streaming in (False, True):
        with Pipeline(name=f"from-hub-{streaming}") as pipeline:
            load = LoadDataFromHub(repo_id="me/prompts", num_examples=7, streaming=streaming, batch_size=3)
            load >> TextGeneration(name="gen", llm=llm(sim))
        rows = pipeline.run(options=RunOptions(result_storage=str(tmp_path / "answers"))).rows()
        assert [row["instruction"] for row in rows] == [f"q{i}" for i in range(7)] and all(r["generation"] for r in rows)
    wrong = LoadDataFromHub(name="load", repo_id="me/missing")
    with pytest.raises(DistilflowUserError, match=r"LoadDataFromHub 'load': cannot load 'me/missing'"):
        wrong.load()


@pytest.mark.usefixtures("prefect_api")
def test_a_runs_card_and_pipeline_yaml_say_how_it_was_made_and_hold_no_secret(hub, sim, monkeypatch, tmp_path):
    from huggingface_hub import HfApi

    monkeypatch.setenv("HF_TOKEN", "hf_test")
    secret = "sk-this-must-never-leave-0123456789"
    with Pipeline(name="made", description="answers to questions") as pipeline:
        load = LoadDataFromDicts(data=[{"instruction": f"q{i}"} for i in range(3)])
        load >> TextGeneration(name="gen", llm=llm(sim, model="sim-model", api_key=secret,
                                                    generation_kwargs={"temperature": 0.2}))
    distiset = pipeline.run(options=RunOptions(result_storage=str(tmp_path / "answers")))
    assert distiset.pipeline_path.name == "pipeline.yaml" and distiset.log_filename_path.exists()
    description = yaml.safe_load(distiset.pipeline_path.read_text())
    assert description["edges"] == [["load_data_from_dicts_0", "gen"]]
    assert description["steps"][1]["model"]["settings"]["generation_kwargs"] == {"temperature": 0.2}
    distiset.push_to_hub("me/made", include_script=False)
    repo = hub.repo("me/made")
    assert {"README.md", "pipeline.yaml", "pipeline.log"} <= set(repo.files)
    card = repo.files["README.md"].decode()
    assert "## How it was made" in card and "| `gen` | `TextGeneration` | `sim-model` (OpenAILLM) | temperature=0.2 | 3 |" in card
    assert "/runs/flow-run/" in card
    everything = b"".join(repo.files.values()) + distiset.pipeline_path.read_bytes() + distiset.log_filename_path.read_bytes()
    assert secret.encode() not in everything
    assert HfApi(token="hf_test").list_repo_files("me/made", repo_type="dataset")
