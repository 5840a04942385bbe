"""distilabel's path for the dataset loaders (`distilabel.steps.generators.huggingface`).

Their homes are `disk.py`, `file_system.py`, `dataset.py` and `hub.py` beside this file.
"""

from distilflow.steps.generators.dataset import LoadDataFromDataset
from distilflow.steps.generators.disk import LoadDataFromDisk
from distilflow.steps.generators.file_system import LoadDataFromFileSystem
from distilflow.steps.generators.hub import LoadDataFromHub

__all__ = ["LoadDataFromDataset", "LoadDataFromDisk", "LoadDataFromFileSystem", "LoadDataFromHub"]
