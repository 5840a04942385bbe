"""A pytest plugin loaded only for the run of distilabel's tests (`-p distilabel_compat_plugin`).

It does to distilabel's test files what a user's `sed 's/\bdistilabel\b/distilflow/g'` does to a
script, without editing them: every `distilabel.X` module is `distilflow.X`, the very module
object (an import hook, so `mock.patch("distilabel.X.name")` patches distilflow's). A module path
distilflow lacks fails to import, as it would in the user's script. The only exceptions are the
few stand-ins in `standins/`, for distilabel internals that its test helpers import; each file
says why.

distilabel 1.5.3's tests build images with `Image.fromarray(np.random.randint(0, 255, (h, w, 3)), "RGB")`:
an int64 array, which Pillow 11 and newer refuse. The Pillow those tests were written with read
the array's memory as raw RGB bytes (the first h*w*3 bytes of the int64 buffer), and the tests'
expected base64 images are of that picture. This plugin gives the same picture back, without
editing the tests.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from pathlib import Path

import numpy as np
from PIL import Image

_STANDINS = Path(__file__).resolve().parent / "standins"
#: distilabel module -> the stand-in file that replaces it
STANDINS = {
    "distilabel.constants": _STANDINS / "constants.py",
    "distilabel.pipeline.batch": _STANDINS / "pipeline_batch.py",
    "distilabel.utils.serialization": _STANDINS / "utils_serialization.py",
}


class _Renamed(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`import distilabel.X` gives the module `distilflow.X`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "distilabel" and not fullname.startswith("distilabel."):
            return None
        if fullname in STANDINS:
            return importlib.util.spec_from_file_location(fullname, STANDINS[fullname])
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = importlib.import_module("distilflow" + spec.name[len("distilabel"):])
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module):
        # the import system has just set the alias's spec on distilflow's module: give its own back
        module.__spec__ = module.__spec__.loader_state


sys.meta_path.insert(0, _Renamed())

_fromarray = Image.fromarray
_CHANNELS = {"RGB": 3, "RGBA": 4, "L": 1}


def _fromarray_as_old_pillow(obj, mode=None):
    if isinstance(obj, np.ndarray) and obj.dtype.kind in "iu" and obj.dtype != np.uint8 and mode in _CHANNELS:
        height, width = obj.shape[:2]
        return Image.frombytes(mode, (width, height), obj.tobytes()[: width * height * _CHANNELS[mode]])
    return _fromarray(obj, mode) if mode is not None else _fromarray(obj)


Image.fromarray = _fromarray_as_old_pillow
