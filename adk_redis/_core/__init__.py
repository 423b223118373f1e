"""Shared core (internal): connection, record codec and event decoding, encryption, Redis URLs.

Nothing here imports from the concern packages (:mod:`adk_redis.sessions`, :mod:`adk_redis.memory`,
:mod:`adk_redis.resilience`, :mod:`adk_redis.store`, :mod:`adk_redis.admin`): they build on it.
"""
