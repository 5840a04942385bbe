from distilflow.tasks.steps.formatting.sft import FormatChatGenerationSFT, FormatTextGenerationSFT

__all__ = ["FormatChatGenerationSFT", "FormatTextGenerationSFT"]
