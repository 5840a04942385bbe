"""Files a step writes beside its rows (distilabel's step artifacts: a plot, a fitted model, a report).

    self.save_artifact("topics", write_function=lambda path: (path / "topics.json").write_text(...),
                       metadata={"n_topics": 12})

writes `<artifacts directory>/topics/` with what `write_function(path)` puts there and a
`metadata.json`. A pipeline run sets the directory (`$DISTILFLOW_HOME/pipelines/<pipeline>/<flow
run id>/artifacts/<step>`; `distiset.artifacts_path`); a step used on its own has none, and
`save_artifact` says so instead of writing somewhere unexpected.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Union

from pydantic import BaseModel, PrivateAttr

_log = logging.getLogger("distilflow.steps")


class ArtifactsMixin(BaseModel):
    _artifacts_directory: Union[Path, None] = PrivateAttr(default=None)

    def set_pipeline_artifacts_path(self, path: Union[str, Path]) -> None:
        """Where the pipeline keeps artifacts; this step's go in the folder named after it."""
        self._artifacts_directory = Path(path) / str(getattr(self, "name", None) or type(self).__name__)

    @property
    def artifacts_directory(self) -> Union[Path, None]:
        return self._artifacts_directory

    def save_artifact(
        self, name: str, write_function: Callable[[Path], Any], metadata: Union[dict[str, Any], None] = None
    ) -> None:
        """Write artifact `name`: `write_function(folder)` fills the folder, `metadata` goes to `metadata.json`."""
        if self._artifacts_directory is None:
            _log.warning(
                "Step '%s': artifact %r not saved, as the step is not running in a pipeline (no artifacts "
                "directory); run it in a pipeline, or call set_pipeline_artifacts_path(path) first.",
                getattr(self, "name", None), name,
            )
            return
        folder = self._artifacts_directory / name
        folder.mkdir(parents=True, exist_ok=True)
        write_function(folder)
        (folder / "metadata.json").write_text(json.dumps(metadata or {}, separators=(",", ":")))
