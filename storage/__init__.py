"""Where rows live: JSONL datasets at local paths or any fsspec URI (`s3://` included).

This package is the one place that builds filesystems. Writes are atomic: rows go to a temporary
name next to the target and are moved into place only when complete, so a reader never sees a
half-written file under the final name.
"""

from storage.datasets import read_rows, write_rows

__all__ = ["read_rows", "write_rows"]
