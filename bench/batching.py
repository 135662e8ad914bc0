"""Loading bench data fast, through the store's own code: bench/run.py's cases and bench/search.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from chatapp.storage import SessionStore


class BatchingStore(SessionStore):
    """The real SessionStore, with its round trips queued on one shared pipeline.

    Bulk loading then writes exactly the keys, scripts and indexes the app writes,
    thousands per round trip instead of one.
    """

    def __init__(self, client: redis.Redis, timeout_seconds: int) -> None:
        super().__init__(client, timeout_seconds)
        self.pipe = client.pipeline(transaction=False)
        self.answer: Any = 1

    def _round_trip(self, build: Callable[[Any], None]) -> list[Any]:
        build(self.pipe)
        return [self.answer]

    def flush(self) -> None:
        for result in self.pipe.execute(raise_on_error=False):
            if isinstance(result, Exception):
                raise result
