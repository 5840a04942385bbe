"""Generate rows with TextGeneration through an OpenAI-compatible server.

With OPENAI_BASE_URL / OPENAI_API_KEY set, it uses that server; otherwise it starts the project's
simulator on loopback, so it runs on a fresh machine with no key and no network:

    python examples/quickstart.py
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage import write_rows  # noqa: E402
from tasks import TextGeneration  # noqa: E402
from tasks.models import OpenAILLM  # noqa: E402
from tasks.simulator import Simulator  # noqa: E402

INSTRUCTIONS = [
    "What's the capital of Spain?",
    "Explain photosynthesis to a ten-year-old.",
    "Write a haiku about the sea.",
]


def main(output: str = "output/quickstart.jsonl") -> None:
    with contextlib.ExitStack() as stack:
        if os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"):
            llm = OpenAILLM(model=os.environ.get("DISTILFLOW_MODEL", "gpt-4o-mini"))
        else:
            sim = stack.enter_context(Simulator())
            print(f"No OPENAI_API_KEY / OPENAI_BASE_URL: using the distilflow simulator at {sim.base_url}")
            llm = OpenAILLM(model="distilflow-sim", base_url=sim.base_url)
        task = TextGeneration(llm=llm, num_generations=2, group_generations=True)
        task.load()
        rows = [row for batch in task.process({"instruction": i} for i in INSTRUCTIONS) for row in batch]
        task.unload()
    print(json.dumps(rows[0], indent=2)[:1200])
    written = write_rows(output, rows)
    print(f"{written} rows ({len(INSTRUCTIONS)} instructions x 2 generations, grouped) written to {Path(output).resolve()}")


if __name__ == "__main__":
    main(*sys.argv[1:])
