"""Images as files named by their content hash, next to the rows that point at them."""

from __future__ import annotations

import base64
import hashlib
import uuid

import fsspec

from tasks.errors import DistilflowUserError

__all__ = ["save_image"]

_FORMATS = {b"\x89PNG": "png", b"\xff\xd8\xff": "jpg", b"GIF8": "gif", b"RIFF": "webp"}


def save_image(image_b64: str, directory: str) -> str:
    """Store a base64 image under `<directory>/<sha256>.<ext>` and return its path or URI.

    The same image is stored once, however many rows hold it; an existing file is not rewritten.
    """
    try:
        data = base64.b64decode(image_b64, validate=True)
    except (ValueError, TypeError) as e:
        raise DistilflowUserError(f"cannot store an image that is not valid base64 ({e}).") from e
    extension = next((ext for magic, ext in _FORMATS.items() if data.startswith(magic)), "bin")
    name = f"{hashlib.sha256(data).hexdigest()}.{extension}"
    fs, root = fsspec.core.url_to_fs(directory)
    target = f"{root.rstrip('/')}/{name}"
    if not fs.exists(target):
        fs.makedirs(root, exist_ok=True)
        temporary = f"{target}.tmp-{uuid.uuid4().hex}"  # two writers never share a temporary file
        with fs.open(temporary, "wb") as f:
            f.write(data)
        fs.mv(temporary, target)
    return f"{directory.rstrip('/')}/{name}"
