"""Copy layout v1 (``chatapp:v1:``) into layout v2: ``flask store migrate``.

Each v1 session is found through the v1 indexes (never SCAN), read whole, and imported into
its user's shard under a new id derived from the old one, so running it again finds the
same id already there and skips it. The old id keeps working through an alias. Live
sessions keep their remaining time, archived ones are kept for ever. v1 keys stay until
``delete_v1``; the running app ignores them meanwhile.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from chatapp.storage.commands import ScriptedStore
from chatapp.storage.keys import alias_key, compose_session_id, iso_from_ms, now_ms, session_key, shard_of_user

V1 = "chatapp:v1"
V1_INDEXES = (f"{V1}:{{idx}}:active", f"{V1}:{{idx}}:archived")
CHUNK = 1000  # messages per import step: a 100,000-message session never sits in one command


def v1_session_key(session_id: str) -> str:
    return f"{V1}:session:{{{session_id}}}"


def v1_messages_key(session_id: str) -> str:
    return f"{V1}:session:{{{session_id}}}:messages"


def migrated_id(legacy_id: str, user_id: str, created_ms: int) -> str:
    """The v2 id of a v1 session: its user's shard, and a suffix derived from the old id."""
    suffix = hashlib.blake2b(legacy_id.encode(), digest_size=5).hexdigest()
    return compose_session_id(user_id, created_ms // 1000, suffix)


@dataclass
class MigrationReport:
    migrated: int = 0
    messages: int = 0
    already: int = 0
    expired: int = 0
    deleted_v1_keys: int = 0


class Migrator(ScriptedStore):
    def pending(self) -> bool:
        """Whether any v1 index remains (cheap enough to ask at an app's first request)."""
        return bool(self.redis.exists(*V1_INDEXES))  # both share the {idx} tag: one command

    def _legacy_ids(self, batch: int = 500) -> Iterator[str]:
        for index in V1_INDEXES:
            start = 0
            while ids := cast(list[str], self.redis.zrange(index, start, start + batch - 1)):
                yield from ids
                start += batch

    def migrate(self, delete_v1: bool = False) -> MigrationReport:
        report = MigrationReport()
        for legacy_id in list(self._legacy_ids()):
            self._migrate_one(legacy_id, report, delete_v1)
        if delete_v1:
            report.deleted_v1_keys += int(self.redis.delete(*V1_INDEXES))
            for pattern in (f"{V1}:{{idx}}:user:*", f"{V1}:{{idx}}:persona:*"):  # operator command: SCAN is fine
                for key in self.redis.scan_iter(match=pattern, count=1000):
                    report.deleted_v1_keys += int(self.redis.delete(key))
        return report

    def _migrate_one(self, legacy_id: str, report: MigrationReport, delete_v1: bool) -> None:
        fields = cast(dict[str, str], self.redis.hgetall(v1_session_key(legacy_id)))
        if not fields:
            report.expired += 1
            return
        archived = fields.get("archived") == "1"
        expires = "" if archived else fields.get("expires_ms", "")
        if expires and int(expires) <= now_ms():
            report.expired += 1
            return
        user_id = fields["user_id"]
        shard = shard_of_user(user_id)
        created_ms = int(fields.get("created_ms") or fields.get("last_ms") or now_ms())
        sid = migrated_id(legacy_id, user_id, created_ms)
        key = session_key(sid, shard)
        imported = {k: v for k, v in fields.items() if k not in ("session_id", "expires_ms")}
        imported["session_id"] = sid
        if expires:
            imported["expires_ms"] = expires
            imported["expires_at"] = iso_from_ms(int(expires))
        flat = [item for pair in imported.items() for item in pair]
        if not self._run("import", shard, key, [sid, "begin", *flat]):
            report.already += 1
        else:
            count = 0
            for chunk in self._message_chunks(legacy_id):
                self._run("import", shard, key, [sid, "more", *chunk])
                count += len(chunk)
            self._run("import", shard, key, [sid, "end", now_ms(), expires])
            report.migrated += 1
            report.messages += count
        self._set_alias(legacy_id, sid, expires)
        if delete_v1:
            report.deleted_v1_keys += int(self.redis.delete(v1_session_key(legacy_id)))
            report.deleted_v1_keys += int(self.redis.delete(v1_messages_key(legacy_id)))

    def _message_chunks(self, legacy_id: str) -> Iterator[list[Any]]:
        start = 0
        while chunk := self.redis.lrange(v1_messages_key(legacy_id), start, start + CHUNK - 1):
            yield chunk
            start += CHUNK

    def _set_alias(self, legacy_id: str, sid: str, expires: str) -> None:
        if expires:
            self.redis.set(alias_key(legacy_id), sid, pxat=int(expires))
        else:
            self.redis.set(alias_key(legacy_id), sid)
