"""Sending scripts in one round trip, on a single server or a Redis Cluster."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Any, cast

import redis
from redis.exceptions import NoScriptError, ResponseError

from chatapp.storage import search_engine
from chatapp.storage.keys import alias_key, is_session_id, iso_from_ms, now_ms, shard_of_session, shard_prefix
from chatapp.storage.lua import Script, all_scripts

QUOTA_NAMES = ("live_sessions", "kept_sessions", "messages_per_session", "bytes")


class QuotaExceeded(Exception):
    """A visitor's write would go over one of its quotas; nothing was written."""

    def __init__(self, name: str, limit: int) -> None:
        super().__init__(f"{name} {limit}")
        self.name = name
        self.limit = limit


class ReplyRunning(Exception):
    """The session already has a reply running (one at a time); nothing was written."""

    def __init__(self, reply_id: str) -> None:
        super().__init__(reply_id)
        self.reply_id = reply_id


class HistoryChanged(Exception):
    """The messages a version change was built on changed before it was stored (another tab
    or client wrote meanwhile); nothing was written."""


def _error_of(result: Exception) -> Exception:
    """A script's error reply as the exception callers catch: a quota, a running reply, messages
    that changed meanwhile, or as it is."""
    if isinstance(result, ResponseError) and str(result).startswith("QUOTA "):
        _, name, limit = str(result).split()
        return QuotaExceeded(name, int(limit))
    if isinstance(result, ResponseError) and str(result).startswith("BUSY "):
        return ReplyRunning(str(result).split()[1])
    if isinstance(result, ResponseError) and str(result).startswith("CHANGED "):
        return HistoryChanged()
    return result


class ScriptedStore:
    """One Redis (or Redis Cluster) client, and the scripts every query goes through.

    ``quotas`` are a visitor's defaults by name (QUOTA_NAMES; 0 or missing = none).
    """

    def __init__(
        self,
        client: redis.Redis,
        timeout_seconds: int,
        quotas: dict[str, int] | None = None,
        search_engine: str | None = None,
    ) -> None:
        self.redis = client
        self._search_engine = search_engine
        self.timeout_ms = timeout_seconds * 1000
        self.quota_spec = " ".join(str(int((quotas or {}).get(name) or 0)) for name in QUOTA_NAMES)
        # Redis Cluster clients route by key; plain clients (and flask-redis proxies of them)
        # have no such method.
        self._node_for_key: Callable[[str], Any] | None = getattr(client, "get_node_from_key", None)

    @property
    def search_engine(self) -> str:
        """The search engine whose scripts this store runs (search_engine.py): the app's, or
        for a store built without one, what the server has."""
        if self._search_engine is None:
            self._search_engine = search_engine.choose(self.redis)
        return self._search_engine

    def _scripts(self) -> dict[str, Script]:
        return all_scripts(self.search_engine)

    def ping(self) -> bool:
        return bool(self.redis.ping())

    def load_scripts(self) -> None:
        """Load every script, so later calls go by SHA only."""
        for script in self._scripts().values():
            self.redis.script_load(script.source)

    def _round_trip(self, build: Callable[[Any], None]) -> list[Any]:
        """Send the commands ``build`` queues on a pipeline in one round trip; the first
        command that failed raises its error (QuotaExceeded, ReplyRunning or Redis's own)."""
        results = self._round_trip_each(build)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    def _round_trip_each(self, build: Callable[[Any], None]) -> list[Any]:
        """Like ``_round_trip``, but each command's error is answered in its place, for
        batches whose commands stand alone (the bulk actions).

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
            return [_error_of(result) if isinstance(result, Exception) else result for result in results]
        raise AssertionError("unreachable")

    def _call(self, pipe: Any, name: str, shard: int, key: str, args: Sequence[Any]) -> None:
        """Queue script ``name`` on ``shard``: KEYS = {key}, ARGV = {the shard's prefix, *args}."""
        options: dict[str, Any] = {}
        if self._node_for_key is not None:
            # On a cluster, name the node of the script's slot: redis-py's cluster pipeline
            # blocks pipe.evalsha and would otherwise ask the server (COMMAND GETKEYS) where
            # a raw EVALSHA goes, an extra round trip per script. MOVED still redirects.
            options["target_nodes"] = self._node_for_key(key)
        sha = self._scripts()[name].sha
        pipe.execute_command("EVALSHA", sha, 1, key, shard_prefix(shard), *args, **options)

    def _call_keys(self, pipe: Any, name: str, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Queue script ``name`` over several shards' keys: for a single server only."""
        pipe.execute_command("EVALSHA", self._scripts()[name].sha, len(keys), *keys, *args)

    def _run(self, name: str, shard: int, key: str, args: Sequence[Any]) -> Any:
        """One script alone in its round trip; its answer."""
        return self._round_trip(lambda pipe: self._call(pipe, name, shard, key, args))[0]

    def _stamp(self) -> list[Any]:
        """now_ms, now_iso, expires_ms, expires_iso: what every write script is given."""
        now = now_ms()
        expires = now + self.timeout_ms
        return [now, iso_from_ms(now), expires, iso_from_ms(expires)]

    def _quotas(self, owner: str | None, limited: bool = True) -> str:
        """The quota argument of a write: the defaults for a visitor, none for an operator."""
        return self.quota_spec if owner and limited else ""

    @staticmethod
    def _token() -> str:
        """Names one write, so a retried call (redis-py retries on a lost connection) is applied once."""
        return secrets.token_hex(8)

    def _locate(self, session_id: str) -> tuple[str, int] | None:
        """A session id and its shard, or None for anything that is not a session id; an id
        from layout v1 costs one lookup of its alias."""
        if not is_session_id(session_id):
            return None
        shard = shard_of_session(session_id)
        if shard is not None:
            return session_id, shard
        current = cast(str | None, self.redis.get(alias_key(session_id)))  # decode_responses
        if current is None:
            return None
        shard = shard_of_session(current)
        return (current, shard) if shard is not None else None
