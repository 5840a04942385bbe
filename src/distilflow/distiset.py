"""`Distiset`: what `Pipeline.run()` returns, as distilabel's, on Hugging Face `datasets`.

A dict of configuration name -> `datasets.DatasetDict` (split "train"): one per leaf step, the
only leaf named "default". So `distiset["default"]["train"]` is a `datasets.Dataset`, with
everything it has (`.to_pandas()`, `.column_names`, `.map`, ...). A run's Distiset is memory-mapped
from the Parquet files its leaves were written to (`from_files`), not rows held in memory.

    distiset.save_to_disk("my-distiset")            # local, or s3://... with storage_options
    distiset = Distiset.load_from_disk("my-distiset")
    distiset.train_test_split(train_size=0.9)

On disk (distilabel's layout): one `save_to_disk` folder per configuration, `distiset_configs/`
(the dataset card `README.md`, `pipeline.yaml`, `pipeline.log` when the run left them) and
`artifacts/<step>/<artifact>/` when its steps saved artifacts.
"""

from __future__ import annotations

import posixpath
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from distilflow.constants import DISTISET_ARTIFACTS_FOLDER, DISTISET_CONFIG_FOLDER

if TYPE_CHECKING:
    from datasets import Dataset
    from huggingface_hub import DatasetCard

__all__ = ["Distiset"]

PIPELINE_CONFIG_FILENAME = "pipeline.yaml"
PIPELINE_LOG_FILENAME = "pipeline.log"


class Distiset(dict):
    """Configuration name -> `datasets.Dataset` or `datasets.DatasetDict`."""

    pipeline_path: Union[Path, None] = None  #: the run's pipeline.yaml, if it left one
    log_filename_path: Union[Path, None] = None  #: the run's pipeline.log, if it left one
    artifacts_path: Union[Path, None] = None  #: the folder of the artifacts its steps saved, if any
    #: how the run went, for the card: its Prefect flow run's address, rows and tokens per step
    run_summary: Union[dict[str, Any], None] = None

    @classmethod
    def from_leaves(cls, leaves: dict[str, list[dict[str, Any]]], artifacts_path: Union[Path, None] = None) -> Distiset:
        """The Distiset of a run: each leaf step's rows as the "train" split of its configuration."""
        from datasets import DatasetDict

        distiset = cls({name: DatasetDict({"train": _dataset(rows, name)})
                        for name, rows in zip(_config_names(leaves), leaves.values())})
        distiset.artifacts_path = artifacts_path
        return distiset

    @classmethod
    def from_files(cls, files: dict[str, tuple[Path, int]], cache_dir: Path) -> Distiset:
        """The Distiset of a run whose leaves' rows are in files (Parquet or JSONL, each with its row count):
        memory-mapped Arrow files made from them, not rows held in memory."""
        from datasets import Dataset, DatasetDict

        from distilflow.utils.hub import quiet_progress_bars

        with quiet_progress_bars():  # "Generating train split" says nothing to the user here
            distiset = cls({
                name: DatasetDict({"train": _read_file(Dataset, str(path), str(cache_dir)) if rows else Dataset.from_list([])})
                for name, (path, rows) in zip(_config_names(files), files.values())
            })
        return distiset

    def rows(self, name: Union[str, None] = None) -> list[dict[str, Any]]:
        """The rows of configuration `name` (the only one when not given), split "train", as dicts."""
        if name is None:
            if len(self) != 1:
                raise KeyError(f"this Distiset has {sorted(self)}: say which, e.g. rows({sorted(self)[0]!r})")
            name = next(iter(self))
        dataset = self[name]
        return (dataset["train"] if _is_dataset_dict(dataset) else dataset).to_list()

    def train_test_split(self, train_size: float, shuffle: bool = True, seed: Union[int, None] = None) -> Distiset:
        """Split every configuration into "train" and "test" (`train_size` the share in "train")."""
        for name, dataset in self.items():
            source = dataset["train"] if _is_dataset_dict(dataset) else dataset
            self[name] = source.train_test_split(train_size=train_size, shuffle=shuffle, seed=seed)
        return self

    def transform_columns_to_image(self, columns: Union[str, list[str]]) -> Distiset:
        """Turn base64 image strings in `columns` into images (`datasets.Image`), for the Hub's viewer."""
        from datasets import Image

        from distilflow.models.image_generation.utils import image_from_str

        wanted = [columns] if isinstance(columns, str) else list(columns)

        def decode(row: dict[str, Any]) -> dict[str, Any]:
            return {c: image_from_str(row[c]) if isinstance(row.get(c), str) else row.get(c) for c in wanted}

        def convert(dataset: Dataset) -> Dataset:
            present = [c for c in wanted if c in dataset.column_names]
            if not present:
                return dataset
            features = dataset.features.copy()
            for column in present:
                features[column] = Image()
            return dataset.map(decode, features=features)

        for name, dataset in self.items():
            if _is_dataset_dict(dataset):
                for split in list(dataset):
                    dataset[split] = convert(dataset[split])
            else:
                self[name] = convert(dataset)
        return self

    # -- on the Hub --------------------------------------------------------------------------------

    def push_to_hub(
        self,
        repo_id: str,
        private: bool = False,
        token: Union[str, None] = None,
        generate_card: bool = True,
        include_script: bool = False,
        **kwargs: Any,
    ) -> None:
        """Push every configuration to the Hub dataset `repo_id`, with the card, pipeline.yaml and pipeline.log.

        The token is `token`, else `HF_TOKEN`, else the `huggingface_hub` login. When the push fails
        (network, token, permissions), the Distiset is saved to disk first and the error says where,
        and how to push it from there, so nothing the run made is lost.
        """
        from distilflow.utils.hub import push_distiset

        push_distiset(self, repo_id, private=private, token=token, generate_card=generate_card,
                      include_script=include_script, **kwargs)

    # -- on disk ---------------------------------------------------------------------------------

    def save_to_disk(
        self,
        distiset_path: Any,
        max_shard_size: Union[str, int, None] = None,
        num_shards: Union[int, None] = None,
        num_proc: Union[int, None] = None,
        storage_options: Union[dict[str, Any], None] = None,
        save_card: bool = True,
        save_pipeline_config: bool = True,
        save_pipeline_log: bool = True,
    ) -> None:
        """Write every configuration, the card, the run's pipeline.yaml and log, and the artifacts."""
        import fsspec

        path = str(distiset_path)
        fs, _, _ = fsspec.get_fs_token_paths(path, storage_options=storage_options)
        for name, dataset in self.items():
            dataset.save_to_disk(posixpath.join(path, name), max_shard_size=max_shard_size, num_shards=num_shards,
                                 num_proc=num_proc, storage_options=storage_options)
        configs = posixpath.join(path, DISTISET_CONFIG_FOLDER)
        fs.makedirs(configs, exist_ok=True)
        if self.artifacts_path:
            fs.put(str(self.artifacts_path), posixpath.join(path, DISTISET_ARTIFACTS_FOLDER), recursive=True)
        if save_card:
            with fs.open(posixpath.join(configs, "README.md"), "w", encoding="utf-8", newline="") as f:
                f.write(str(self._get_card(repo_id=Path(path).name)))
        for wanted, source, filename in ((save_pipeline_config, self.pipeline_path, PIPELINE_CONFIG_FILENAME),
                                         (save_pipeline_log, self.log_filename_path, PIPELINE_LOG_FILENAME)):
            if wanted and source is not None and Path(source).exists():
                with fs.open(posixpath.join(configs, filename), "w", encoding="utf-8") as f:
                    f.write(Path(source).read_text(encoding="utf-8"))

    @classmethod
    def load_from_disk(
        cls,
        distiset_path: Any,
        keep_in_memory: Union[bool, None] = None,
        storage_options: Union[dict[str, Any], None] = None,
        download_dir: Union[str, Path, None] = None,
    ) -> Distiset:
        """Read a Distiset written by `save_to_disk` (a remote one is downloaded first, to `download_dir`)."""
        import fsspec
        from datasets import load_from_disk

        from distilflow.storage.filesystems import is_local

        path = str(distiset_path)
        fs, _, (root,) = fsspec.get_fs_token_paths(path, storage_options=storage_options)
        if not fs.isdir(root):
            raise FileNotFoundError(f"{path}: no Distiset there (no such folder); give the folder save_to_disk wrote.")
        local = Path(root)
        if not is_local(fs):
            local = Path(download_dir or tempfile.mkdtemp(prefix="distiset-")) / Path(root).name
            fs.get(root, str(local), recursive=True)
        distiset = cls()
        for folder in sorted(local.iterdir()):
            if folder.name == DISTISET_CONFIG_FOLDER:
                for attribute, filename in (("pipeline_path", PIPELINE_CONFIG_FILENAME),
                                            ("log_filename_path", PIPELINE_LOG_FILENAME)):
                    if (folder / filename).exists():
                        setattr(distiset, attribute, folder / filename)
            elif folder.name == DISTISET_ARTIFACTS_FOLDER:
                distiset.artifacts_path = folder
            elif folder.is_dir():
                distiset[folder.name] = load_from_disk(str(folder), keep_in_memory=keep_in_memory)
        return distiset

    def _get_card(self, repo_id: str, token: Union[str, None] = None) -> DatasetCard:
        """The dataset card: YAML metadata (size, tags) and, per configuration, a record and how to load it."""
        from distilflow.utils.card import distiset_card

        return distiset_card(self, repo_id)

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}: {dataset!r}" for name, dataset in self.items())
        return f"Distiset({{{parts}}})"


def _dataset(rows: list[dict[str, Any]], name: str) -> Dataset:
    """Rows as an Arrow dataset; a column only some rows have is None in the others (never dropped)."""
    import pyarrow as pa
    from datasets import Dataset

    columns = list(dict.fromkeys(key for row in rows for key in row))
    try:
        table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise TypeError(
            f"Distiset '{name}': its rows cannot be one table ({e}); a column must hold values of one kind "
            "(say, text in every row, or None)."
        ) from e
    return Dataset(table)


def _read_file(dataset_class: Any, path: str, cache_dir: str) -> Any:
    if path.endswith(".parquet"):
        return dataset_class.from_parquet(path, cache_dir=cache_dir)
    return dataset_class.from_json(path, cache_dir=cache_dir)


def _is_dataset_dict(value: Any) -> bool:
    from datasets import DatasetDict

    return isinstance(value, DatasetDict)


def _config_names(leaves: dict[str, Any]) -> list[str]:
    """A run's configurations: its leaves' names, or "default" for its only leaf (distilabel's)."""
    return ["default"] if len(leaves) == 1 else list(leaves)
