"""OpenAI-compatible simulator: a deterministic, fault-injecting stand-in for an LLM provider.

Tests, examples and benchmarks point the real ``openai`` client at
``Simulator().base_url`` instead of a paid provider.
"""

from .config import SimulatorConfig
from .server import Simulator

__all__ = ["Simulator", "SimulatorConfig"]
