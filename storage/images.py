"""Images as files named by their content hash, next to the rows that point at them."""

from __future__ import annotations

import base64
import binascii
import hashlib

from distilflow.storage.errors import storage_errors
from distilflow.storage.filesystems import filesystem, join, write_bytes_atomic
from distilflow.errors import DistilflowUserError

__all__ = ["save_image"]

_FORMATS = {b"\x89PNG": "png", b"\xff\xd8\xff": "jpg", b"GIF8": "gif", b"RIFF": "webp"}


def save_image(image_b64: str, directory: str) -> str:
    """Store a base64 image as `<directory>/<sha256>.<ext>` and return that path or URI.

    The same image is stored once, however many rows hold it: an existing object is not rewritten
    (its name is its content). The write is atomic, so a reader never sees a partial image.
    """
    try:
        data = base64.b64decode(image_b64, validate=True)
    except (binascii.Error, ValueError, TypeError) as e:
        raise DistilflowUserError(f"cannot store an image that is not valid base64 ({e}).") from e
    extension = next((ext for magic, ext in _FORMATS.items() if data.startswith(magic)), "bin")
    name = f"{hashlib.sha256(data).hexdigest()}.{extension}"
    uri = f"{directory.rstrip('/')}/{name}"
    fs, root = filesystem(directory)
    target = join(root, name)
    with storage_errors(uri, "write"):
        if not fs.exists(target):
            write_bytes_atomic(fs, target, data)
    return uri
