"""Rendering a formatted prompt with rich (`Task.print`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text


def print_prompt(task_class: str, model_name: str | None, prompt: Any, console: Console | None = None) -> None:
    console = console or Console()
    messages, structured = (prompt if isinstance(prompt, tuple) else (prompt, None))
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    panels = [_message_panel(m) for m in messages]
    if structured:
        panels.append(Panel(Text(f"structured output: {structured.get('format', 'json')}"), border_style="blue", expand=False))
    title = f"[bold magenta]{task_class} prompt: {model_name or 'no model'}[/bold magenta]"
    console.print(Panel(Group(*panels), title=title, border_style="magenta", expand=False))


def _message_panel(message: dict[str, Any]) -> Panel:
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts
        parts = []
        for part in content:
            if part.get("type") == "text":
                parts.append(part.get("text", ""))
            elif part.get("type") == "image_url":
                url = str(part.get("image_url", {}).get("url", ""))
                parts.append(f"[image: {url[:60]}{'...' if len(url) > 60 else ''}]")
        content = "\n".join(parts)
    text = Text.assemble((f"{str(message.get('role', '')).capitalize()}\n", "bold cyan"), (str(content), "white"))
    return Panel(text, border_style="blue", expand=False)
