"""A pytest plugin loaded only for the run of distilabel's tests (`-p distilabel_compat_plugin`).

distilabel 1.5.3's tests build images with `Image.fromarray(np.random.randint(0, 255, (h, w, 3)), "RGB")`:
an int64 array, which Pillow 11 and newer refuse. The Pillow those tests were written with read
the array's memory as raw RGB bytes (the first h*w*3 bytes of the int64 buffer), and the tests'
expected base64 images are of that picture. This plugin gives the same picture back, without
editing the tests.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_fromarray = Image.fromarray
_CHANNELS = {"RGB": 3, "RGBA": 4, "L": 1}


def _fromarray_as_old_pillow(obj, mode=None):
    if isinstance(obj, np.ndarray) and obj.dtype.kind in "iu" and obj.dtype != np.uint8 and mode in _CHANNELS:
        height, width = obj.shape[:2]
        return Image.frombytes(mode, (width, height), obj.tobytes()[: width * height * _CHANNELS[mode]])
    return _fromarray(obj, mode) if mode is not None else _fromarray(obj)


Image.fromarray = _fromarray_as_old_pillow
