"""Deterministic PNG images in pure Python (no Pillow), named by what they were made from."""

from __future__ import annotations

import hashlib
import json
import re

from distilflow._png import encode_rgb_png

from .config import parse_image_size

_IMAGE_NAME_RE = re.compile(r"^([0-9a-f]{32})-(\d+x\d+)$")


def image_key(prompt: str, index: int) -> str:
    """Hex key of one generated image; the PNG is a pure function of key and size."""
    blob = json.dumps([prompt, index], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def image_name(key: str, width: int, height: int) -> str:
    # The name carries everything needed to redraw the image, so URL mode
    # needs no server-side storage.
    return f"{key}-{width}x{height}"


def parse_image_name(name: str) -> tuple[str, int, int] | None:
    match = _IMAGE_NAME_RE.match(name)
    if not match:
        return None
    try:
        width, height = parse_image_size(match.group(2))
    except ValueError:
        return None
    return match.group(1), width, height


def render_png(key: str, width: int, height: int) -> bytes:
    """An RGB PNG with a checkerboard or stripes whose colours come from ``key``."""
    digest = hashlib.sha256(bytes.fromhex(key)).digest()
    foreground, background = digest[0:3], digest[3:6]
    cell = 2 + digest[6] % 14
    pattern = digest[7] % 3

    def row(first: bytes, second: bytes) -> bytes:
        # Built once per distinct row and reused: cheap even at 512x512.
        unit = first * cell + second * cell
        return (unit * (width // (2 * cell) + 1))[: width * 3]

    row_a, row_b = row(foreground, background), row(background, foreground)
    solid_a, solid_b = foreground * width, background * width
    lines = []
    for y in range(height):
        odd = (y // cell) % 2 == 1
        if pattern == 0:  # checkerboard
            line = row_b if odd else row_a
        elif pattern == 1:  # horizontal stripes
            line = solid_b if odd else solid_a
        else:  # vertical stripes
            line = row_a
        lines.append(line)
    return encode_rgb_png(width, height, lines)
