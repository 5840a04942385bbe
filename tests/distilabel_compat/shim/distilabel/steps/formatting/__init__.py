from distilflow.tasks.steps.formatting import (
    ConversationTemplate, FormatChatGenerationDPO, FormatChatGenerationSFT, FormatTextGenerationDPO,
    FormatTextGenerationSFT,
)

__all__ = [
    "ConversationTemplate", "FormatChatGenerationDPO", "FormatChatGenerationSFT", "FormatTextGenerationDPO",
    "FormatTextGenerationSFT",
]
