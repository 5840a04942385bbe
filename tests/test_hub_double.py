"""The Hub double speaks what the real `huggingface_hub` and `datasets` clients need, over HTTP."""

from __future__ import annotations

import datasets
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError


def test_push_to_hub_and_load_dataset_round_trip_through_the_real_clients(hub):
    rows = [{"instruction": f"q{i}", "n": i} for i in range(7)]
    datasets.Dataset.from_list(rows).push_to_hub("me/round-trip", config_name="default", token="hf_test")
    repo = hub.repo("me/round-trip")
    assert sorted(repo.files) == [".gitattributes", "README.md", "data/train-00000-of-00001.parquet"]
    assert "data/train-00000-of-00001.parquet" in repo.lfs_paths  # Parquet went through git-LFS, as on the Hub
    back = datasets.load_dataset("me/round-trip", "default", split="train", token="hf_test")
    assert back.to_list() == rows
    api = HfApi(token="hf_test")
    assert api.repo_exists("me/round-trip", repo_type="dataset") and api.whoami()["name"] == "distilflow-user"
    assert sorted(api.list_repo_files("me/round-trip", repo_type="dataset")) == sorted(repo.files)


def test_a_private_repo_needs_a_token_and_a_bad_token_is_refused(hub):
    api = HfApi(token="hf_test")
    api.create_repo("me/private", repo_type="dataset", private=True)
    api.create_repo("me/private", repo_type="dataset", private=True, exist_ok=True)  # a second time: fine
    api.upload_file(path_or_fileobj=b"hello", path_in_repo="notes.txt", repo_id="me/private", repo_type="dataset")
    assert hub.repo("me/private").files["notes.txt"] == b"hello"
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).repo_info("me/private", repo_type="dataset")
    hub.store.tokens = {"hf_good"}
    with pytest.raises(HfHubHTTPError, match="401"):
        HfApi(token="hf_bad").create_repo("me/other", repo_type="dataset")


def test_a_refused_commit_fails_the_push_and_the_next_one_goes_through(hub):
    api = HfApi(token="hf_test")
    api.create_repo("me/flaky", repo_type="dataset")
    hub.refuse_commits(1)
    with pytest.raises(HfHubHTTPError, match="500"):
        api.upload_file(path_or_fileobj=b"one", path_in_repo="a.txt", repo_id="me/flaky", repo_type="dataset")
    assert "a.txt" not in hub.repo("me/flaky").files
    api.upload_file(path_or_fileobj=b"one", path_in_repo="a.txt", repo_id="me/flaky", repo_type="dataset")
    assert hub.repo("me/flaky").files["a.txt"] == b"one"
