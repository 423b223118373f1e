"""hello_agent: a tool call that updates app, user and session state."""

from . import agent

__all__ = ["agent"]
