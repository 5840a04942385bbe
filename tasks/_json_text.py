"""Reading the JSON value in a model's text answer, wherever the model put it.

Models asked for JSON answer with it alone, inside a Markdown fence (```json ... ```), or after a
sentence of their own. The APIGen tasks read all three the same way, and say why when there is
no JSON to read, so the row's fallback reason is useful.
"""

from __future__ import annotations

import json
import re
from typing import Any, Union

__all__ = ["read_json"]

_FENCED = re.compile(r"```[A-Za-z]*\s*\n?(.*?)```", re.DOTALL)


def read_json(text: str) -> tuple[Union[Any, None], str]:
    """The JSON value in `text` and `""`, or `None` and why nothing could be read."""
    candidates = [text.strip()]
    fenced = _FENCED.search(text)
    if fenced:
        candidates.append(fenced.group(1).strip())
    candidates.extend(_outermost(text))
    error = "it is empty"
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return json.loads(candidate), ""
        except ValueError as e:
            error = f"invalid JSON: {e}"
    return None, error


def _outermost(text: str) -> list[str]:
    """The text from the first `[` or `{` to the last matching bracket, for answers with words around the JSON."""
    spans = []
    for opening, closing in ("[]", "{}"):
        start, end = text.find(opening), text.rfind(closing)
        if start != -1 and end > start:
            spans.append((start, text[start : end + 1]))
    return [span for _, span in sorted(spans)]
