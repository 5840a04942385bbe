"""A minimal PNG encoder (8-bit RGB), so test images need no imaging library."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode_rgb_png(width: int, height: int, scanlines: Iterable[bytes]) -> bytes:
    """PNG bytes from `height` scanlines of `width * 3` RGB bytes each."""
    raw = b"".join(b"\x00" + line for line in scanlines)  # filter type 0 per scanline
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
