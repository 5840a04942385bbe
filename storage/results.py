"""Prefect result storage (cached task results) at a local path or any fsspec URI, s3:// included.

Prefect's own RemoteFileSystem block keeps fsspec settings, credentials included, in the block's
saved document in plain text. This block saves only `basepath`; it reaches the storage through
`storage.filesystem`, so S3 credentials come from the environment or the Secret block named by
DISTILFLOW_S3_CREDENTIALS_BLOCK of whichever process runs the task.

Prefect 3.8's ResultStore uses a storage block through `read_path` / `write_path` (sync, called
with `_sync=True`) and `aread_path` / `awrite_path` (async), and `_resolve_path` for blocks that
are not saved. Saved blocks are required for remote result storage, hence `result_storage_block`.
"""

from __future__ import annotations

import hashlib
import urllib.parse

import anyio.to_thread
from prefect.filesystems import WritableFileSystem
from pydantic import Field, field_validator

from storage.errors import storage_errors
from storage.filesystems import filesystem, write_bytes_atomic
from tasks.errors import DistilflowUserError

__all__ = ["DistilflowResultStorage", "result_storage_block"]


class DistilflowResultStorage(WritableFileSystem):
    """Cached Prefect results under `basepath`, with credentials from the environment, never from here."""

    _block_type_name = "Distilflow Result Storage"
    _block_type_slug = "distilflow-result-storage"
    _description = (
        "Prefect result storage at a local path or fsspec URI (s3://bucket/prefix). S3 credentials and "
        "endpoint come from the worker's AWS_* environment or DISTILFLOW_S3_CREDENTIALS_BLOCK."
    )

    basepath: str = Field(
        default=...,
        description="Where results are stored: a local path or an fsspec URI such as s3://bucket/results.",
        examples=["s3://my-bucket/distilflow/results"],
    )

    @field_validator("basepath")
    @classmethod
    def _no_credentials_in_uri(cls, value: str) -> str:
        if "@" in urllib.parse.urlsplit(value).netloc:
            raise ValueError(
                "the result storage URI must not hold credentials (user:secret@...); set them in the "
                "environment or in the Secret block named by DISTILFLOW_S3_CREDENTIALS_BLOCK"
            )
        return value

    def _resolve_path(self, path: str) -> str:
        base = self.basepath.rstrip("/")
        if path.startswith(base + "/"):
            return path
        return f"{base}/{path.lstrip('/')}" if path else f"{base}/"

    def read_path(self, path: str, _sync: bool | None = None) -> bytes:
        uri = self._resolve_path(path)
        fs, location = filesystem(uri)
        with storage_errors(uri, "read"):
            return fs.cat_file(location)

    def write_path(self, path: str, content: bytes, _sync: bool | None = None) -> str:
        uri = self._resolve_path(path)
        fs, location = filesystem(uri)
        with storage_errors(uri, "write"):
            write_bytes_atomic(fs, location, content)
        return uri

    async def aread_path(self, path: str) -> bytes:
        return await anyio.to_thread.run_sync(self.read_path, path)

    async def awrite_path(self, path: str, content: bytes) -> str:
        return await anyio.to_thread.run_sync(self.write_path, path, content)


def result_storage_block(location: str) -> DistilflowResultStorage:
    """A DistilflowResultStorage for `location`, saved (Prefect requires that) under a stable name.

    The name derives from the location alone, so every run and every worker that uses the same
    location saves and uses the same block. Needs a Prefect API (a flow run, or a configured one).
    """
    parts = urllib.parse.urlsplit(location)
    if "@" in parts.netloc:  # never echo the location: it holds a secret
        shown = urllib.parse.urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
        raise DistilflowUserError(
            f"result storage {shown}: the URI must not hold credentials; set them in the environment "
            "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or in the Secret block named by DISTILFLOW_S3_CREDENTIALS_BLOCK."
        )
    block = DistilflowResultStorage(basepath=location)
    name = f"distilflow-results-{hashlib.sha256(location.rstrip('/').encode()).hexdigest()[:16]}"
    block.save(name, overwrite=True, _sync=True)
    return block

