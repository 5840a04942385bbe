from distilflow.tasks.steps.formatting.dpo import FormatChatGenerationDPO, FormatTextGenerationDPO

__all__ = ["FormatChatGenerationDPO", "FormatTextGenerationDPO"]
