"""Where rows, images and cached results live: local paths or any fsspec URI (`s3://` included).

This package is the one place that builds filesystems (`filesystem`), so S3 settings are read in
one way everywhere: from the environment or a Prefect Secret block, never from code. Writes are
atomic: data is staged under hidden names and published in one step (a rename, a single object
write, or a manifest swap), so a reader never sees a half-written dataset under the final name.
Storage failures surface as `DistilflowUserError`s that name the location and the fix.
"""

from storage.datasets import check_readable, check_writable, read_rows, write_rows
from storage.filesystems import filesystem
from storage.images import save_image
from storage.writer import DatasetWriter

__all__ = [
    "DatasetWriter",
    "DistilflowResultStorage",
    "check_readable",
    "check_writable",
    "filesystem",
    "read_rows",
    "result_storage_block",
    "save_image",
    "write_rows",
]


def __getattr__(name: str):
    # The result storage block imports Prefect (about a second); plain dataset I/O does not need it.
    if name in ("DistilflowResultStorage", "result_storage_block"):
        from storage import results

        return getattr(results, name)
    raise AttributeError(f"module 'storage' has no attribute {name!r}")
