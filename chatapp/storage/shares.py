"""Share links: a read-only link to one session, frozen (snapshot) or following it (live).

A link lives in the shard of the session it shares; its token (the secret in its URL) and
its id (what its owner revokes it by) both start with that shard, so every operation is one
script on one slot, whatever the cluster (see migrations_none/README.md):

- ``P sh:<token>`` hash: the link (id, session, user, mode, dates, views; a snapshot also
  keeps the session's name, persona and dates as they were), ``P shm:<token>`` list: a
  snapshot's messages, copied when it was made, ``P shid:<share id>`` -> the token;
- ``P shs:<sid>`` and ``P shu:<uid>`` zsets: a session's and a user's links by expiry (ms;
  ``+inf`` for never), pruned of links that ended whenever they are read.

Each key expires with its link in Redis itself (``PEXPIREAT``), so no sweeper is needed and an
expired link is indistinguishable from one that never existed. A live link reads the session
as it is; deleting the session ends it (``delete.lua``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chatapp.storage.commands import ScriptedStore
from chatapp.storage.keys import (
    iso_from_ms,
    new_share_id,
    new_share_token,
    now_ms,
    session_key,
    shard_of_share,
    share_id_key,
    share_key,
)
from chatapp.storage.records import Message, pairs

SHARE_MODES = ("snapshot", "live")


@dataclass(frozen=True)
class SharedPage:
    """What a link shows: the link's fields, the session's (``session_*``: as it was for a
    snapshot, as it is for a live link), a page of messages and where it starts."""

    share: dict[str, Any]
    session: dict[str, str]
    messages: list[Message]
    first_index: int
    total: int


def share_from_hash(fields: dict[str, str]) -> dict[str, Any]:
    """A link as its owner sees it (the caller makes a URL of the token)."""
    expires = fields.get("expires_ms") or ""
    return {
        "share_id": fields["share_id"],
        "token": fields["token"],
        "session_id": fields["sid"],
        "user_id": fields["uid"],
        "mode": fields["mode"],
        "created_at": fields["created_at"],
        "created_ms": int(fields["created_ms"]),
        "expires_at": iso_from_ms(int(expires)) if expires else None,
        "views": int(fields.get("views") or 0),
    }


class ShareStore(ScriptedStore):
    """Share links over the session store's client and scripts."""

    def create_share(
        self, session_id: str, mode: str, expires_in: int | None, owner: str | None, cap: int = 0
    ) -> dict[str, Any] | None:
        """A new link to the session (None if not found or not the owner's). ``cap``: the most
        working links the session's user may have; over it, QuotaExceeded('shares')."""
        located = self._locate(session_id)
        if located is None:
            return None
        sid, shard = located
        token, share_id = new_share_token(shard), new_share_id(shard)
        now = now_ms()
        expires = "" if expires_in is None else now + expires_in * 1000
        expires_iso = "" if expires == "" else iso_from_ms(int(expires))
        args = [sid, owner or "", now, token, share_id, mode, iso_from_ms(now), expires, expires_iso, cap]
        done = self._run("share_create", shard, session_key(sid, shard), args)
        if done is None:
            return None
        if done == 0:  # 192 random bits taken already: never in practice
            raise RuntimeError("share token collision")
        fields = {
            "share_id": share_id,
            "token": token,
            "sid": sid,
            "uid": "",
            "mode": mode,
            "created_at": iso_from_ms(now),
            "created_ms": str(now),
            "expires_ms": str(expires),
            "views": "0",
        }
        return share_from_hash(fields)

    def list_shares(self, session_id: str, owner: str | None) -> list[dict[str, Any]] | None:
        """The session's working links, newest first; None if not found or not the owner's."""
        located = self._locate(session_id)
        if located is None:
            return None
        sid, shard = located
        found = self._run("share_list", shard, session_key(sid, shard), [sid, owner or "", now_ms()])
        if found is None:
            return None
        shares = [share_from_hash(pairs(flat)) for flat in found]
        return sorted(shares, key=lambda s: s["created_ms"], reverse=True)

    def revoke_share(self, share_id: str, owner: str | None) -> bool:
        """End a link at once; False if there is none (or it is not the owner's)."""
        shard = shard_of_share(share_id, is_id=True)
        if shard is None:
            return False
        return bool(self._run("share_revoke", shard, share_id_key(share_id, shard), [share_id, owner or ""]))

    def read_share(
        self, token: str, limit: int | None = None, before: int | None = None, count_view: bool = False
    ) -> SharedPage | None:
        """What the link shows (the newest ``limit`` messages before index ``before``, or all),
        counting a view if asked; None when the link does not work, whatever the reason."""
        shard = shard_of_share(token)
        if shard is None:
            return None
        args = [token, -1 if limit is None else limit, "" if before is None else before, "1" if count_view else "0"]
        found = self._run("share_read", shard, share_key(token, shard), args)
        if not found:
            return None
        share_flat, session_flat, first, total, docs = found
        share = pairs(share_flat)
        session = {k: v for k, v in share.items() if k.startswith("session_")} | pairs(session_flat)
        return SharedPage(
            share=share_from_hash(share),
            session=session,
            messages=[json.loads(doc) for doc in docs],
            first_index=int(first),
            total=int(total),
        )
