"""EvolQuality's mutation prompts (`distilabel.steps.tasks.evol_quality.utils`)."""

__all__ = ["MUTATION_TEMPLATES"]

_REWRITE = (
    "You improve what an AI assistant answered. Rewrite the response below to the given prompt so "
    "that it is a better answer, still sensible and easy for people to understand. Keep every "
    "non-text part of the prompt and the response (tables, code, input data) as it is.\n"
    "{how}\n"
    "Keep it concise: the rewritten response may be at most 10 to 20 words longer than the given "
    "one. Reply with the rewritten response only, without mentioning the given response or the "
    "rewriting.\n\n"
    "#Given Prompt#:\n<PROMPT>\n\n#Given Response#:\n<RESPONSE>\n\n#Rewritten Response#:\n"
)

# distilabel's names (users pick and drop templates by name); the texts are distilflow's own.
MUTATION_TEMPLATES: dict[str, str] = {
    "HELPFULNESS": _REWRITE.format(how="Make the response more helpful to the person who asked."),
    "RELEVANCE": _REWRITE.format(how="Make the response more relevant to the given prompt."),
    "DEEPENING": _REWRITE.format(how="Make the response go more in depth."),
    "CREATIVITY": _REWRITE.format(how="Make the response more creative."),
    "DETAILS": _REWRITE.format(how="Make the response more detailed."),
}
