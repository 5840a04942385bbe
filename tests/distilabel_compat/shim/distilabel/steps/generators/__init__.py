from distilflow.tasks.steps.generators import (
    DataSampler, LoadDataFromDicts, LoadDataFromDisk, LoadDataFromFileSystem, make_generator_step,
)

__all__ = ["DataSampler", "LoadDataFromDicts", "LoadDataFromDisk", "LoadDataFromFileSystem", "make_generator_step"]
