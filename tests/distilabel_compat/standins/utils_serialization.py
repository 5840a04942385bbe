"""distilabel's `utils.serialization`: the key of its serialization format's type information, and `write_json`.

distilflow does not serialize steps in distilabel's format; the tests that check it are left out
(exclusions.py). Test modules import `TYPE_INFO_KEY` at module level, and test_distiset.py writes
its fixtures' artifact metadata with `write_json`, so both are here.
"""

import json
from pathlib import Path
from typing import Any

TYPE_INFO_KEY = "type_info"


def write_json(filename: Path, data: Any) -> None:
    Path(filename).parent.mkdir(parents=True, exist_ok=True)
    Path(filename).write_text(json.dumps(data))


__all__ = ["TYPE_INFO_KEY", "write_json"]
