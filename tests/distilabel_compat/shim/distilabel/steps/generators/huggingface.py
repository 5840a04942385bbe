"""distilabel's Hugging Face loaders: distilflow's file and disk loaders.

distilflow has no `LoadDataFromHub` (it would need the Hub, over the network). The name is here
only because distilabel's test module imports it; its tests are left out (exclusions.py).
"""

from distilflow.tasks.steps.generators.disk import LoadDataFromDisk
from distilflow.tasks.steps.generators.file_system import LoadDataFromFileSystem


class LoadDataFromHub:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError(
            "distilflow has no LoadDataFromHub: save the dataset and use LoadDataFromDisk or LoadDataFromFileSystem"
        )


__all__ = ["LoadDataFromDisk", "LoadDataFromFileSystem", "LoadDataFromHub"]
