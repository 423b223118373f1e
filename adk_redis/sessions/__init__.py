"""Sessions on Redis: :class:`RedisSessionService` (ADK's ``BaseSessionService``) and its listings.

- ``_service``: the service (ADK contract, listings, restore/upgrade)
- ``_layout``: record fields, format version, the Lua prelude
- ``_pages``: page cursors and in-memory pages (pure, no Redis)
- ``_scripts``: the session Lua scripts
"""

from ._pages import SessionPage
from ._service import RedisSessionService

__all__ = ["RedisSessionService", "SessionPage"]
