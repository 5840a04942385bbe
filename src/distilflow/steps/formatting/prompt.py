"""The prompt columns that DPO and SFT rows share: `prompt`, its `prompt_id`, and the opening messages.

`prompt_id` is the SHA-256 hex digest of the prompt's UTF-8 text, as in distilabel (and in the
datasets it imitates, such as HuggingFaceH4/ultrachat_200k), so ids match across both tools.
"""

from __future__ import annotations

import hashlib
from typing import Any

from distilflow.errors import DistilflowUserError
from distilflow.typing import ChatType

__all__ = ["first_user_message", "instruction_messages", "prompt_id"]


def prompt_id(step: Any, prompt: Any) -> str:
    """The SHA-256 hex digest of `prompt`, which must be text."""
    if not isinstance(prompt, str):
        raise DistilflowUserError(
            f"{type(step).__name__} '{step.name}': the prompt of a row is a {type(prompt).__name__}, not text, so it "
            "has no prompt_id. Give every row a text prompt (drop or fix the rows before this step)."
        )
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def instruction_messages(row: dict[str, Any]) -> ChatType:
    """The user's `instruction`, after the row's `system_prompt` when it has a non-empty one."""
    messages: ChatType = [{"role": "user", "content": row["instruction"]}]
    system_prompt = row.get("system_prompt")
    if isinstance(system_prompt, str) and system_prompt:
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def first_user_message(step: Any, messages: ChatType) -> Any:
    """The content of the first user message of a conversation (its prompt)."""
    for message in messages:
        if message.get("role") == "user":
            return message.get("content")
    raise DistilflowUserError(
        f"{type(step).__name__} '{step.name}': a row's messages have no user message, so it has no prompt "
        f"(roles: {[message.get('role') for message in messages]}). Give every conversation a user turn."
    )
