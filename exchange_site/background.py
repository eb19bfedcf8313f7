"""Work that follows a commit but need not hold up the request: one event loop per process,
on a daemon thread, running what it is given in the order it was given.

``async_to_sync`` would start a loop (and a Redis connection) on every call: about 2 ms of
CPU on the request thread per accepted order, and 14 % of a busy matcher's time. A Redis
round trip made on the request thread (the matcher wake-up) held an order request ~0.5 ms
longer for nothing. One queue drained by one task keeps things in order (an order's
``filled`` never overtakes its ``partially_filled``) and keeps its connections open.
What runs here is best-effort: a failure is logged, never raised to anyone.
"""

import asyncio
import inspect
import logging
import os
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class OrderedBackground:
    def __init__(self, name: str):
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._pid: int | None = None
        self._task: asyncio.Task | None = None

    def _ready(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Queue]:
        with self._lock:
            # A forked worker inherits these attributes but not the thread: start its own.
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                queue: asyncio.Queue = asyncio.Queue()
                self._task = loop.create_task(self._drain(queue))
                threading.Thread(target=loop.run_forever, name=self._name, daemon=True).start()
                self._loop, self._queue, self._pid = loop, queue, os.getpid()
            return self._loop, self._queue

    @staticmethod
    async def _drain(queue: asyncio.Queue) -> None:
        while True:
            function, args = await queue.get()
            try:
                result = function(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.warning("background %s failed", function.__qualname__, exc_info=True)

    def submit(self, function: Callable, *args) -> None:
        """Run ``function(*args)`` (awaited if it returns an awaitable) on the background
        loop, after everything submitted before it. Never raises."""
        try:
            loop, queue = self._ready()
            loop.call_soon_threadsafe(queue.put_nowait, (function, args))
        except Exception:
            logger.warning("%s not queued", function.__qualname__, exc_info=True)


after_commit = OrderedBackground("after-commit")
