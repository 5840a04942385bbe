"""EvolInstruct's mutation prompts (`distilabel.steps.tasks.evol_instruct.utils`)."""

__all__ = ["MUTATION_TEMPLATES"]

_REWRITE = (
    "You rewrite prompts so that well-known AI assistants (ChatGPT, GPT-4 and the like) find them "
    "harder to answer, while people can still understand and answer them. Keep every non-text part "
    "of the given prompt (tables, code, input data) as it is, and do not drop its input.\n"
    "{how}\n"
    "Make the rewritten prompt at most 10 to 20 words longer than the given one, and reply with "
    "the rewritten prompt only: never mention the given prompt or the rewriting.\n\n"
    "#Given Prompt#:\n<PROMPT>\n\n#Rewritten Prompt#:\n"
)

# distilabel's names (users pick and drop templates by name); the texts are distilflow's own.
MUTATION_TEMPLATES: dict[str, str] = {
    "CONSTRAINTS": _REWRITE.format(how="Rewrite it by adding exactly one extra constraint or requirement."),
    "DEEPENING": _REWRITE.format(
        how="Where the prompt asks about a particular issue, rewrite it so it asks about that issue "
        "in more depth and from more angles."
    ),
    "CONCRETIZING": _REWRITE.format(
        how="Rewrite it by replacing general concepts with more specific, concrete ones."
    ),
    "INCREASED_REASONING_STEPS": _REWRITE.format(
        how="If a few simple thinking steps are enough to answer it, rewrite it so that answering "
        "explicitly requires reasoning in several steps."
    ),
    "BREADTH": (
        "You invent new prompts. Taking the given prompt as inspiration, write a brand-new prompt "
        "in the same domain but on a rarer topic, of about the same length and difficulty, that "
        "people can understand and answer. Reply with the new prompt only: never mention the "
        "given prompt or that the new one was created from it.\n\n"
        "#Given Prompt#:\n<PROMPT>\n\n#Created Prompt#:\n"
    ),
}
