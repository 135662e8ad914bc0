"""Search over a user's sessions: titles, names, descriptions and messages.

The index lives beside the sessions, in the user's shard, and is kept by the writes
themselves: the scripts that store a message, rename, clear or delete a session call the
search functions of ``scripts/search_prelude.lua`` in the same step, and expired sessions
leave it a few per write (and as soon as a search meets one). A query is one script on the
user's shard (``scripts/search_query.lua``); an operator's search over everyone is one per
shard, in one round trip. See migrations_none/README.md for the keys.

Words are folded as ``search_text`` says (case and accents do not matter).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from redis.exceptions import ResponseError

from chatapp.storage.commands import ScriptedStore
from chatapp.storage.keys import SHARDS, now_ms, session_key, shard_of_user, shard_prefix
from chatapp.storage.records import Message, Session
from chatapp.storage.search_engine import QUERY_ENGINE, create_index, is_missing_index

T = TypeVar("T")
REINDEX_BATCH = 100  # sessions per HSCAN step of a reindex
REINDEX_MESSAGES = 500  # messages per script of a reindex (a long session takes several)


@dataclass(frozen=True)
class Clause:
    """What a session must hold: one word, or a phrase of several in a row; ``prefix``: the
    last word may go on (``proj*`` finds ``project``). Words are folded (search_text.words)."""

    words: tuple[str, ...]
    prefix: bool = False


@dataclass
class Hit:
    session: Session
    snippets: list[tuple[int, Message]]  # (message index, message) that hold the most clauses
    title_hits: int  # clauses found in the title, name or description
    weight: float  # how often its messages hold the clauses (each at most 15)
    last_ms: int


@dataclass
class SearchPage:
    hits: list[Hit] = field(default_factory=list)
    total: int = 0


def _clause_args(clauses: list[Clause]) -> list[Any]:
    args: list[Any] = [len(clauses)]
    for clause in clauses:
        args += ["1" if clause.prefix else "0", len(clause.words), *clause.words]
    return args


def _hit(entry: list[Any]) -> Hit | None:
    sid, summary, hits, weight, last, flat = entry
    if not summary:
        return None
    snippets = [(int(flat[i]), json.loads(flat[i + 1])) for i in range(0, len(flat), 2)]
    return Hit(json.loads(summary), snippets, int(hits), float(weight), int(last))


class SearchStore(ScriptedStore):
    """Queries of the search index, and its rebuilding for data stored before it existed."""

    def search(
        self,
        clauses: list[Clause],
        user_id: str | None = None,
        persona: str | None = None,
        archived: bool | None = None,
        from_ms: int | None = None,
        to_ms: int | None = None,
        offset: int = 0,
        limit: int = 20,
        snippets: int = 3,
    ) -> SearchPage:
        """Sessions holding every clause, best first: one user's (one script on their shard),
        or everyone's (``user_id`` None: one script per shard, merged here)."""
        if not clauses:
            return SearchPage()
        filters = [
            persona or "",
            "" if archived is None else ("1" if archived else "0"),
            "" if from_ms is None else from_ms,
            "" if to_ms is None else to_ms,
            snippets,
        ]
        tail = [*filters, *_clause_args(clauses)]
        now = now_ms()
        script = "search_query_ft" if self.search_engine == QUERY_ENGINE else "search_query"
        if user_id is not None:
            shard = shard_of_user(user_id)
            args = [user_id, now, offset, limit, *tail]
            total, page = self._with_index(lambda: self._run(script, shard, self._users_key(shard), args))
            return SearchPage([h for h in map(_hit, page) if h], int(total))

        def every_shard(pipe: Any) -> None:
            for shard in range(SHARDS):
                self._call(pipe, script, shard, self._users_key(shard), ["", now, 0, offset + limit, *tail])

        answers = self._with_index(lambda: self._round_trip(every_shard))
        hits = [h for _, page in answers for h in map(_hit, page) if h]
        # The script's order: rank, best first; between equals, session ids in order.
        best = sorted(hits, key=lambda h: (-h.title_hits, -h.weight, -h.last_ms, h.session["session_id"]))
        return SearchPage(best[offset : offset + limit], sum(int(total) for total, _ in answers))

    def _with_index(self, query: Callable[[], T]) -> T:
        """Run a query; when the Query Engine's index is gone (a FLUSHALL drops it), make it
        again (it takes in the documents still stored) and run the query once more."""
        try:
            return query()
        except ResponseError as exc:
            if self.search_engine != QUERY_ENGINE or not is_missing_index(exc):
                raise
            create_index(self.redis)
            return query()

    @staticmethod
    def _users_key(shard: int) -> str:
        return shard_prefix(shard) + "x:users"

    # --- reindex ------------------------------------------------------------------------

    def reindex(self, restart: bool = False, progress: Callable[[int, int], None] | None = None) -> int:
        """Index every stored session afresh (data stored before the index existed); answers
        how many. Idempotent; resumable: each shard's HSCAN cursor over its summaries is kept
        in ``x:reindex`` until the shard is done, so a run that stopped goes on where it was
        (``restart`` starts over). A session written meanwhile is indexed by that write too."""
        done = 0
        for shard in range(SHARDS):
            for sid in self._reindex_walk(shard, restart):
                self._reindex_session(sid, shard)
                done += 1
            if progress:
                progress(shard, done)
        return done

    def _reindex_walk(self, shard: int, restart: bool) -> Iterator[str]:
        """The shard's sessions by HSCAN over its summaries, the cursor saved after each batch.

        A maintenance command, so SCAN's cousin is fine here: HSCAN returns every session there
        for the whole walk at least once (one seen twice is indexed twice: the same result)."""
        state_key = shard_prefix(shard) + "x:reindex"
        summaries = shard_prefix(shard) + "summaries"
        cursor = 0 if restart else int(cast(str | None, self.redis.get(state_key)) or 0)
        while True:
            cursor, found = self.redis.hscan(summaries, cursor, count=REINDEX_BATCH)
            batch = list(found)
            yield from (str(sid) for sid in batch)  # decode_responses
            if cursor == 0:
                self.redis.delete(state_key)
                return
            self.redis.set(state_key, cursor)

    def _reindex_session(self, sid: str, shard: int) -> None:
        key = session_key(sid, shard)
        count = int(self._run("search_reindex", shard, key, [sid, "begin"]))
        for start in range(0, count, REINDEX_MESSAGES):
            if int(self._run("search_reindex", shard, key, [sid, "more", start, REINDEX_MESSAGES])) < 0:
                return
