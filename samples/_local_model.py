"""The samples' model: Gemini with ``GOOGLE_API_KEY``, else adk_redis' offline scripted model.

``choose_model()`` returns a Gemini model name when ``GOOGLE_API_KEY`` is set
(override the name with ``ADK_SAMPLE_MODEL``) and an
:class:`adk_redis.testing.ScriptedModel` otherwise.  ``ADK_REDIS_LOCAL_MODEL=1``
forces the offline model.  The model itself lives in the package
(``adk_redis.testing``, ADK's public API only) so you can test your own
agents offline the same way.
"""

from __future__ import annotations

import os

from google.adk.models.base_llm import BaseLlm

from adk_redis.testing import ScriptedModel, ToolRule

GEMINI_DEFAULT = "gemini-3.5-flash"

#: The samples' name for the offline model.
LocalModel = ScriptedModel

__all__ = ["GEMINI_DEFAULT", "LocalModel", "ToolRule", "choose_model"]


def choose_model(rules: list[ToolRule], ack: str = "Noted") -> BaseLlm | str:
    """Gemini when GOOGLE_API_KEY is set (and ADK_REDIS_LOCAL_MODEL is not), else the scripted model."""
    if os.environ.get("GOOGLE_API_KEY") and os.environ.get("ADK_REDIS_LOCAL_MODEL", "") in ("", "0"):
        return os.environ.get("ADK_SAMPLE_MODEL", GEMINI_DEFAULT)
    return ScriptedModel(rules=rules, ack=ack)
