"""The store's background loop: one daemon thread running one event loop; all of a store's I/O runs on it.

Sync methods submit to it and block the calling thread; ``*_async`` methods await it without blocking
the caller's loop; a sync method called from the loop's own thread raises :class:`RuntimeError`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """One daemon thread running one event loop; everything a store does runs here."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._closed = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def _check(self, coro: Coroutine[Any, Any, Any], *, sync: bool) -> None:
        if self._closed:
            coro.close()
            raise RuntimeError("The session store is closed.")
        if sync and threading.get_ident() == self._thread.ident:
            coro.close()
            raise RuntimeError(
                "Synchronous session-store methods cannot be called from the store's own event loop; "
                "await the *_async method instead."
            )

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and block the calling thread until it is done."""
        self._check(coro, sync=True)
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the loop without blocking the caller's loop."""
        self._check(coro, sync=False)
        if threading.get_ident() == self._thread.ident:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def stop(self) -> None:
        """Stop the loop (pending tasks are cancelled) and join the thread."""
        if self._closed:
            return
        self._closed = True
        self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.get_ident() != self._thread.ident:
            self._thread.join(timeout=10)
