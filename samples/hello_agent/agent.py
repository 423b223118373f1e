"""A greeting agent whose tool keeps visit counters in ADK state.

The agent itself ships in the package (:mod:`adk_redis.samples.hello_agent.agent`, what
``adk-redis demo`` runs); here it gets the samples' model: Gemini with ``GOOGLE_API_KEY``,
else the offline scripted model.  State written by ``record_visit``:
``app:total_visits`` (all users), ``user:visits`` (this user, every session)
and ``last_note`` (this session).
"""

from __future__ import annotations

from _local_model import choose_model

from adk_redis.samples.hello_agent.agent import GREETING, build_agent, record_visit

__all__ = ["record_visit", "root_agent"]

root_agent = build_agent(choose_model([GREETING]))
