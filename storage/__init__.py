"""Where rows and images live: local paths or any fsspec URI (`s3://` included).

This package is the one place that builds filesystems. Writes are atomic: data goes to a
temporary name next to the target and is moved into place only when complete, so a reader never
sees a half-written file under the final name.
"""

from storage.datasets import read_rows, write_rows
from storage.images import save_image

__all__ = ["read_rows", "save_image", "write_rows"]
