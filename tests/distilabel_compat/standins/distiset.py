"""distilabel's `Distiset`, as far as its generator tests use it: configuration name -> dataset, and
`save_to_disk`, which writes distilabel's layout (one Hugging Face `save_to_disk` directory per
configuration, beside a `distiset_configs/` folder) for LoadDataFromDisk(is_distiset=True) to read.

A stand-in, not distilflow's object: distilflow's Distiset (what a pipeline run returns) does not
write itself to disk. It only builds the tests' fixture, with `datasets`, as distilabel does.
"""

import posixpath

import fsspec


class Distiset(dict):
    def save_to_disk(self, distiset_path, storage_options=None, **kwargs):
        path = str(distiset_path)
        for name, dataset in self.items():
            dataset.save_to_disk(posixpath.join(path, name), storage_options=storage_options)
        fs, _, _ = fsspec.get_fs_token_paths(path, storage_options=storage_options)
        fs.makedirs(posixpath.join(path, "distiset_configs"), exist_ok=True)


__all__ = ["Distiset"]
