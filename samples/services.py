"""Loaded by ``adk web`` / ``adk api_server`` from the agents dir: route redis:// URIs to adk_redis.

    adk web samples --session_service_uri redis://localhost:6379/0 \
        --memory_service_uri redis://localhost:6379/0
"""

import adk_redis

adk_redis.register()
