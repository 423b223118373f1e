"""Loaded by ``adk web`` / ``adk api_server`` from this agents directory: route redis:// URIs to adk_redis."""

import adk_redis

adk_redis.register()
