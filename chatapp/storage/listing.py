"""Listings from the indexes: one shard for a user's sessions, a merge over every shard
for operator-wide ones. A page costs O(log N + page) in Redis whatever the store holds."""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass
from typing import Any

from chatapp.storage.commands import ScriptedStore
from chatapp.storage.keys import (
    SHARDS,
    index_name,
    now_ms,
    shard_of_session,
    shard_of_user,
    shard_prefix,
    summaries_key,
)
from chatapp.storage.records import Session

SEARCH_SCAN = 10_000  # sessions a search reads at most (a visitor's quotas keep it far below)


@dataclass(frozen=True)
class SummaryPage:
    """A page of sessions as the API shows them (JSON text each, in order) and the total."""

    summaries: list[str]
    total: int

    def sessions(self) -> list[Session]:
        return [json.loads(summary) for summary in self.summaries]


class ListingStore(ScriptedStore):
    """Queries answered from the indexes and the summaries beside them."""

    def list_page(
        self,
        user_id: str | None = None,
        persona: str | None = None,
        archived: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> SummaryPage:
        """A page of sessions, most recent activity first, and how many match."""
        name = index_name(archived, user_id, persona)
        now = now_ms()
        if user_id is not None:  # one user lives in one shard: one script, one round trip
            shard = shard_of_user(user_id)
            total, _, summaries = self._run("page", shard, shard_prefix(shard) + name, [name, now, offset, limit, 1])
            found = [s for s in summaries if s]
            return SummaryPage(found, int(total) - (len(summaries) - len(found)))
        if self._node_for_key is None:  # one server: every shard in one script
            keys = [shard_prefix(shard) + name for shard in range(SHARDS)]
            args = [now, offset, limit, "1" if name.startswith("live") else "0"]
            args += [shard_prefix(shard) for shard in range(SHARDS)]
            total, summaries = self._round_trip(lambda pipe: self._call_keys(pipe, "merged_page", keys, args))[0]
            return SummaryPage(summaries, int(total))
        return self._merged_page(name, now, offset, limit)

    def search_page(
        self,
        user_id: str | None,
        words: str,
        persona: str | None = None,
        archived: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> SummaryPage:
        """A page of the sessions whose name, title or description contains ``words`` (ASCII
        letters in any case), pinned first, then most recent activity, and how many match.

        One user's: one script in the user's shard, reading the user's sessions in order, at
        most SEARCH_SCAN of them. Everyone's (operators): that script in every shard, in one
        round trip, merged here. Message content is not searched here.
        """
        name = index_name(archived, user_id, persona)
        needle = "".join(c.lower() if c.isascii() else c for c in words)
        now = now_ms()
        if user_id is not None:
            shard = shard_of_user(user_id)
            args = [name, now, offset, limit, needle, SEARCH_SCAN]
            total, summaries = self._run("search", shard, shard_prefix(shard) + name, args)
            return SummaryPage(summaries, int(total))

        def each_shard(pipe: Any) -> None:
            for shard in range(SHARDS):
                args = [name, now, 0, offset + limit, needle, SEARCH_SCAN]
                self._call(pipe, "search", shard, shard_prefix(shard) + name, args)

        answers = self._round_trip(each_shard)
        found = [(json.loads(summary), summary) for _, summaries in answers for summary in summaries]
        found.sort(key=lambda pair: (bool(pair[0].get("pinned")), pair[0].get("last_activity") or ""), reverse=True)
        return SummaryPage([summary for _, summary in found[offset : offset + limit]], sum(int(a[0]) for a in answers))

    def _merged_page(self, name: str, now: int, offset: int, limit: int) -> SummaryPage:
        """On a cluster: every shard's first offset+limit entries, merged; then the page's
        summaries. Two round trips; deep offsets cost every shard that many entries."""

        def tops(pipe: Any) -> None:
            for shard in range(SHARDS):
                self._call(pipe, "page", shard, shard_prefix(shard) + name, [name, now, 0, offset + limit, 0])

        answers = self._round_trip(tops)
        total = sum(int(answer[0]) for answer in answers)
        entries = ((float(page[i + 1]), page[i]) for _, page, _ in answers for i in range(0, len(page), 2))
        chosen = [sid for _, sid in heapq.nlargest(offset + limit, entries)][offset:]
        if not chosen:
            return SummaryPage([], total)
        by_shard: dict[int, list[str]] = {}
        for sid in chosen:
            by_shard.setdefault(shard_of_session(sid) or 0, []).append(sid)
        shards = list(by_shard)

        def fetch(pipe: Any) -> None:
            for shard in shards:
                self._call(pipe, "fetch", shard, summaries_key(shard), by_shard[shard])

        found: dict[str, str] = {}
        for shard, summaries in zip(shards, self._round_trip(fetch), strict=True):
            found.update((sid, s) for sid, s in zip(by_shard[shard], summaries, strict=True) if s)
        return SummaryPage([found[sid] for sid in chosen if sid in found], total - (len(chosen) - len(found)))

    def list_sessions(
        self,
        user_id: str | None = None,
        persona: str | None = None,
        archived: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Session], int]:
        """Like ``list_page``, decoded."""
        page = self.list_page(user_id, persona, archived, offset, limit)
        return page.sessions(), page.total

    def purge_expired(self, batch: int = 500) -> int:
        """Drop expired sessions' index entries and summaries in every shard (their keys
        expired by themselves). Every write does this for up to 10 in its shard anyway."""
        now, removed = now_ms(), 0
        for shard in range(SHARDS):
            while True:
                done = int(self._run("purge", shard, shard_prefix(shard) + "live", [now, batch]))
                removed += done
                if done < batch:
                    break
        return removed
