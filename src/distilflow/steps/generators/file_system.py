"""`LoadDataFromFileSystem`: rows of JSONL, JSON, CSV or Parquet files at a path, a glob or an fsspec
URI (`s3://` included), read lazily: file by file and batch by batch (distilabel's).

distilabel reads these files with Hugging Face `datasets`; distilflow reads them with its own
storage readers (`distilflow.storage`), which stream, so a million-row file costs one batch of
memory. S3 settings come from the environment as everywhere in distilflow, with `storage_options`
laid over them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from pydantic import Field

from distilflow.errors import DistilflowUserError
from distilflow.steps.generators._file_loader import FileLoader, OptionalRuntimeParameter
from distilflow.typing import RuntimeParameter

__all__ = ["LoadDataFromFileSystem"]


class LoadDataFromFileSystem(FileLoader):
    """Loads the rows of files: `data_files` is a file, a glob (`data/**/*.jsonl`), a directory, or an
    fsspec URI of one (`s3://bucket/prefix/*.parquet`).

    `filetype` (jsonl, json, csv, parquet) is told from each file's name when not given; a `.json`
    file holds JSON lines or one array of objects. A directory gives its files and those of its
    sub-directories. Its `outputs` are the first row's columns, read by `load()`.

    ```python
    loader = LoadDataFromFileSystem(data_files="s3://bucket/prompts/*.jsonl", batch_size=100)
    loader.load()
    next(loader.process())  # ([{"prompt": ...}, ... 100 rows], False)
    ```
    """

    data_files: RuntimeParameter[Union[str, Path]] = Field(
        default=None, description="The file, glob, directory or URI of the files to load."
    )
    split: RuntimeParameter[str] = Field(
        default="train", description="The files make one split, 'train' (as in Hugging Face datasets)."
    )
    filetype: OptionalRuntimeParameter[str] = Field(
        default=None, description="jsonl, json, csv or parquet; default: told from the file names."
    )
    streaming: RuntimeParameter[bool] = Field(
        default=False, description="Accepted for distilabel's code: distilflow always reads lazily."
    )

    def _source(self) -> tuple | None:
        return None if self.data_files is None else (str(self.data_files), self.filetype, self.split)

    def _find(self) -> Any:
        from distilflow.storage.datasets import find_data_files

        if self.data_files is None:
            raise DistilflowUserError(
                "data_files is not set; give the path, glob or URI of the files (data_files=... when building the "
                "step, or as a run-time parameter)."
            )
        if self.split not in (None, "train"):
            raise DistilflowUserError(
                f"split={self.split!r}, but the files of data_files make one split, 'train' (as in Hugging Face "
                f"datasets); point data_files at that split's files (e.g. 'data/{self.split}/*.jsonl') and leave "
                "split unset."
            )
        return find_data_files(str(self.data_files), filetype=self.filetype, storage_options=self.storage_options)
