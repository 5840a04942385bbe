"""Pushing a Distiset to the Hugging Face Hub (or a Hub double at `HF_ENDPOINT`), and what a failed push keeps."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from distilflow.errors import DistilflowUserError

if TYPE_CHECKING:
    from distilflow.distiset import Distiset

__all__ = ["hub_token", "push_distiset", "quiet_progress_bars"]


def hub_token(token: Union[str, None] = None) -> str:
    """The token to push with: `token`, `HF_TOKEN`, or the `huggingface_hub` login; refused with the fix if none."""
    from huggingface_hub import get_token

    found = token or os.environ.get("HF_TOKEN") or get_token()
    if not found:
        raise DistilflowUserError(
            "No Hugging Face token to push with: pass token=..., set HF_TOKEN, or log in with `hf auth login`."
        )
    return found


def push_distiset(distiset: Distiset, repo_id: str, *, private: bool, token: Union[str, None], generate_card: bool,
                  include_script: bool, keep_on_failure: bool = True, **kwargs: Any) -> None:
    from huggingface_hub import HfApi

    token = hub_token(token)
    try:
        for name, dataset in distiset.items():
            dataset.push_to_hub(repo_id, config_name=name, private=private, token=token, **kwargs)
        api = HfApi(token=token)
        if generate_card:
            _push_card(api, distiset, repo_id)
        extras = [(distiset.pipeline_path, "pipeline.yaml"), (distiset.log_filename_path, "pipeline.log")]
        if include_script and sys.argv and Path(sys.argv[0]).is_file():
            extras.append((Path(sys.argv[0]), Path(sys.argv[0]).name))
        for source, name in extras:
            if source is not None and Path(source).exists():
                api.upload_file(path_or_fileobj=str(source), path_in_repo=name, repo_id=repo_id, repo_type="dataset")
        if distiset.artifacts_path is not None and Path(distiset.artifacts_path).exists():
            api.upload_folder(folder_path=str(distiset.artifacts_path), path_in_repo="artifacts", repo_id=repo_id,
                              repo_type="dataset")
    except DistilflowUserError:
        raise
    except Exception as error:  # noqa: BLE001 - whatever stopped the push, the rows are kept first
        if not keep_on_failure:  # the caller has them already (a flow's written output)
            raise
        kept = _keep(distiset, repo_id)
        raise DistilflowUserError(
            f"push_to_hub({repo_id!r}) failed ({type(error).__name__}: {' '.join(str(error).split())[:300]}). The dataset is saved at "
            f"{kept}; push it again with: Distiset.load_from_disk({str(kept)!r}).push_to_hub({repo_id!r})"
        ) from error


def _push_card(api: Any, distiset: Distiset, repo_id: str) -> None:
    """distilflow's card, keeping the metadata `datasets` wrote for the configurations (configs, dataset_info)."""
    from huggingface_hub import DatasetCard

    card = distiset._get_card(repo_id)
    try:
        existing = DatasetCard.load(repo_id, repo_type="dataset", token=api.token)
        for key, value in existing.data.to_dict().items():
            if key not in card.data.to_dict():
                setattr(card.data, key, value)
    except Exception:  # noqa: BLE001 - no card yet: distilflow's alone
        pass
    api.upload_file(path_or_fileobj=str(card).encode("utf-8"), path_in_repo="README.md", repo_id=repo_id,
                    repo_type="dataset")


def _keep(distiset: Distiset, repo_id: str) -> Path:
    from distilflow.local_server import private_home

    where = private_home() / "unpushed" / repo_id.replace("/", "__") / time.strftime("%Y%m%d-%H%M%S")
    distiset.save_to_disk(where)
    return where


@contextlib.contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """No `datasets` or `huggingface_hub` progress bars inside (they are put back as they were)."""
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    shown_datasets, shown_hub = is_progress_bar_enabled(), not are_progress_bars_disabled()
    disable_progress_bar()
    disable_progress_bars()
    try:
        yield
    finally:
        if shown_datasets:
            enable_progress_bar()
        if shown_hub:
            enable_progress_bars()
