"""Where rows, images and cached results live: local paths or any fsspec URI (`s3://` included).

This package is the one place that builds filesystems (`filesystem`), so S3 settings are read in
one way everywhere: from the environment or a Prefect Secret block, never from code. Writes are
atomic: data is staged under hidden names and published in one step (a rename, a single object
write, or a manifest swap), so a reader never sees a half-written dataset under the final name.
Storage failures surface as `DistilflowUserError`s that name the location and the fix.
"""

from distilflow.storage.answers import AnswerStore, answer_store, check_answer_store
from distilflow.storage.datasets import check_readable, check_writable, read_rows, write_rows
from distilflow.storage.filesystems import filesystem
from distilflow.storage.images import save_image
from distilflow.storage.writer import DatasetWriter

__all__ = [
    "AnswerStore",
    "DatasetWriter",
    "answer_store",
    "check_answer_store",
    "check_readable",
    "check_writable",
    "filesystem",
    "read_rows",
    "save_image",
    "write_rows",
]

