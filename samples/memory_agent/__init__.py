"""memory_agent: cross-session memory through ADK's memory tools."""

from . import agent

__all__ = ["agent"]
