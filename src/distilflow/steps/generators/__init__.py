"""Generator steps that load rows (distilabel's loaders): from dicts, a sample of dicts, an in-memory
table, files at a path, glob or fsspec URI, a directory written by Hugging Face `save_to_disk`, or the Hub.

Every loader yields `(rows, last_batch)` pairs of `batch_size` rows and starts after the first
`offset` rows when asked (a resumed run). The file loaders read lazily, file by file and batch
by batch, so memory does not grow with the dataset.
"""

from distilflow.steps.generators.data import LoadDataFromDicts
from distilflow.steps.generators.data_sampler import DataSampler
from distilflow.steps.generators.dataset import LoadDataFromDataset
from distilflow.steps.generators.disk import LoadDataFromDisk
from distilflow.steps.generators.file_system import LoadDataFromFileSystem
from distilflow.steps.generators.hub import LoadDataFromHub
from distilflow.steps.generators.utils import make_generator_step

__all__ = [
    "DataSampler",
    "LoadDataFromDataset",
    "LoadDataFromDicts",
    "LoadDataFromDisk",
    "LoadDataFromFileSystem",
    "LoadDataFromHub",
    "make_generator_step",
]
