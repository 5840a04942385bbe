"""What the file loaders share: columns read from the data, lazy batches, `num_examples`, `offset`.

A file loader's columns are those of its data, so they are known only once its files are found
and the first row (or a saved dataset's features) is read: `load()` does that, and checks
`output_mappings` then. Asked for its `outputs` before `load()` (a pipeline checking its graph),
it reads them the same way, without reading further.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Optional, TypeVar

from pydantic import Field, PositiveInt, PrivateAttr

from distilflow.errors import DistilflowUserError
from distilflow.steps.base import GeneratorStep, GeneratorStepOutput
from distilflow.steps.generators._batches import batches
from distilflow.typing import RUNTIME_PARAMETER

__all__ = ["FileLoader", "OptionalRuntimeParameter"]

_T = TypeVar("_T")
#: A run-time parameter that may stay unset: `Optional[RuntimeParameter[T]]` as runtime_parameters
#: reads it, without the `Field(default=None)` inside a Union that pydantic warns about.
OptionalRuntimeParameter = Optional[Annotated[Optional[_T], RUNTIME_PARAMETER]]


class FileLoader(GeneratorStep):
    """A generator step reading the rows of files through `distilflow.storage`, lazily."""

    num_examples: OptionalRuntimeParameter[PositiveInt] = Field(
        default=None, description="Read only the first rows, this many (default: all)."
    )
    # fsspec's options for the filesystem (credentials, endpoint, project): handed to it as given,
    # never part of the step's dump or repr.
    storage_options: Optional[dict[str, Any]] = Field(
        default_factory=dict, exclude=True, repr=False, description="fsspec options of the filesystem."
    )

    _files: Any = PrivateAttr(None)  # distilflow.storage.datasets.DatasetFiles
    _columns: Any = PrivateAttr(None)  # list[str] once read
    _columns_of: Any = PrivateAttr(None)  # the settings the columns were read with

    # -- what a loader says ------------------------------------------------------------------

    def _source(self) -> tuple | None:
        """The settings that say where the rows are (None: not given yet)."""
        raise NotImplementedError

    def _find(self) -> Any:
        """The dataset's files (a `DatasetFiles`); raises DistilflowUserError naming the path and the fix."""
        raise NotImplementedError

    # -- columns -----------------------------------------------------------------------------

    @property
    def outputs(self) -> list[str]:
        """The data's columns: its first row's keys, or a saved dataset's features."""
        if self._columns is None or self._columns_of != self._source():
            if self._source() is None:
                return []
            self._read_columns()
        return list(self._columns)

    def _read_columns(self) -> None:
        try:
            files = self._find()
            columns = files.columns
            if columns is None:
                first = next(files.rows(), None)
                if first is None:
                    raise DistilflowUserError(
                        f"{', '.join(files.uris)}: no rows, so no columns to load; point the loader at files that "
                        "hold rows."
                    )
                columns = list(first)
        except DistilflowUserError as e:
            raise type(e)(f"{type(self).__name__} '{self.name}': {e}") from e
        self._files, self._columns, self._columns_of = files, columns, self._source()

    def verify_inputs_mappings(self) -> None:
        if self.input_mappings:
            raise DistilflowUserError(
                f"{type(self).__name__} '{self.name}': input_mappings {sorted(self.input_mappings)} given, but a "
                "loader reads no input columns; remove them (output_mappings rename the columns it loads)."
            )

    def verify_outputs_mappings(self) -> None:
        if self._columns is not None:  # else checked in load(), once the columns are read
            super().verify_outputs_mappings()

    # -- lifecycle ---------------------------------------------------------------------------

    def load(self) -> None:
        """Find the files and read the columns (the first row); a missing file, an empty glob, an
        unknown file type or a bad first row fail here, with the path and the fix."""
        self._read_columns()  # found again: the files may have changed since `outputs` was read
        self.verify_inputs_mappings()
        self.verify_outputs_mappings()
        super().load()

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        """Batches of the rows after the first `offset` (and within the first `num_examples`)."""
        if not self._loaded:
            self.load()
        rows = self._files.rows(skip=offset)
        if self.num_examples is not None:
            rows = itertools.islice(rows, max(self.num_examples - offset, 0))
        yield from batches(rows, self.batch_size)
