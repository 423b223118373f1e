"""What every adk_redis service shares (the session and memory services, their fallbacks): the Redis
client it may own, ``ping``, ``close`` and ``async with``.

A service builds its client from a URL and owns it (``close`` closes it), or is given one (``client=``:
fakeredis, a cluster client, another service's client) and leaves it open for its owner.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from typing_extensions import Self

from .connection import adopt_client


class RedisClientOwner:
    """Base of the services: ``client``, ``ping``, ``close``, ``async with``."""

    client: Any
    owns_client: bool = False
    """True when the service made its client (``close`` closes it); False for an injected one."""

    def _use_client(self, client: Any, make: Callable[[], Any]) -> None:
        """``client`` if one was injected (left open by :meth:`close`), else ``make()`` (owned)."""
        self.owns_client = client is None
        # an injected client gets the deadline and typed errors of adk_redis' own (adopt_client)
        self.client = adopt_client(client, getattr(self, "settings", None)) if client is not None else make()

    async def ping(self) -> bool:
        """True when Redis answers PING (raises the client's connection error otherwise)."""
        return bool(await self.client.ping())

    async def close(self) -> None:
        """Close the client if this service made it (an injected client is left open)."""
        if self.owns_client:
            await self.client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
