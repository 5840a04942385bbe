"""distilabel's `distiset`: distilflow's `Distiset`, given the `save_to_disk` its generator tests use.

distilflow's Distiset does not write itself to disk yet (the datasets issue makes it distilabel's
whole Distiset). distilabel's `test_huggingface.py` builds its fixture with
`Distiset({...}).save_to_disk(path)`: distilabel's layout, one Hugging Face `save_to_disk`
directory per configuration beside a `distiset_configs/` folder, for
LoadDataFromDisk(is_distiset=True) to read. Only that is added here, to distilflow's own class
(so `isinstance(pipeline.run(), Distiset)` holds).
"""

import posixpath

import fsspec

from distilflow.distiset import Distiset

__all__ = ["Distiset"]


def _save_to_disk(self, distiset_path, storage_options=None, **kwargs):
    path = str(distiset_path)
    for name, dataset in self.items():
        dataset.save_to_disk(posixpath.join(path, name), storage_options=storage_options)
    fs, _, _ = fsspec.get_fs_token_paths(path, storage_options=storage_options)
    fs.makedirs(posixpath.join(path, "distiset_configs"), exist_ok=True)


if not hasattr(Distiset, "save_to_disk"):
    Distiset.save_to_disk = _save_to_disk
