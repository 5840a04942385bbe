"""Reading OpenAI-format conversations."""

from __future__ import annotations

from typing import Any


def chat_texts(messages: list[dict[str, Any]]) -> list[str]:
    """The text of every message: string contents and the `text` parts of part lists."""
    texts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                part["text"]
                for part in content
                if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
            )
    return texts
