"""Sending commands and scripts in one round trip, on a single server or a Redis Cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import redis
from redis.exceptions import NoScriptError

from chatapp.storage.keys import messages_key, session_key
from chatapp.storage.lua import all_scripts


class ScriptedStore:
    """One Redis (or Redis Cluster) client, and the scripts every query goes through."""

    def __init__(self, client: redis.Redis, timeout_seconds: int) -> None:
        self.redis = client
        self.timeout_ms = timeout_seconds * 1000
        # Redis Cluster clients route by key; plain clients (and flask-redis proxies of them)
        # have no such method.
        self._node_for_key: Callable[[str], Any] | None = getattr(client, "get_node_from_key", None)

    def ping(self) -> bool:
        return bool(self.redis.ping())

    def load_scripts(self) -> None:
        """Load every script, so later calls go by SHA only."""
        for script in all_scripts().values():
            self.redis.script_load(script.source)

    def _round_trip(self, build: Callable[[Any], None]) -> list[Any]:
        """Send the commands ``build`` queues on a pipeline in one round trip.

        A server that lost its script cache (restart, failover) answers NOSCRIPT;
        the scripts are reloaded and the batch sent once more.
        """
        for attempt in (1, 2):
            pipe = self.redis.pipeline(transaction=False)
            build(pipe)
            results = pipe.execute(raise_on_error=False)
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in results):
                self.load_scripts()
                continue
            for result in results:
                if isinstance(result, Exception):
                    raise result
            return results
        raise AssertionError("unreachable")

    def _call(self, pipe: Any, name: str, keys: list[str], args: Iterable[Any]) -> None:
        options: dict[str, Any] = {}
        if self._node_for_key is not None:
            # On a cluster, name the node of the script's slot: redis-py's cluster pipeline
            # blocks pipe.evalsha and would otherwise ask the server (COMMAND GETKEYS) where
            # a raw EVALSHA goes, an extra round trip per script. MOVED still redirects.
            options["target_nodes"] = self._node_for_key(keys[0])
        pipe.execute_command("EVALSHA", all_scripts()[name].sha, len(keys), *keys, *args, **options)

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """One script alone in its round trip; its answer."""
        return self._round_trip(lambda pipe: self._call(pipe, name, keys, args))[0]

    def _session_call(self, pipe: Any, name: str, session_id: str, args: Iterable[Any]) -> None:
        self._call(pipe, name, [session_key(session_id), messages_key(session_id)], args)
