"""Upgrading layout v1 to v2: data written by the released v1 code is all there after
``flask store migrate``, through the v2 API, and a second run changes nothing."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.v1_storage import SessionStore as V1Store
from tests.fixtures.v1_storage import make_message as v1_message
from tests.helpers import OPERATOR_KEY

pytestmark = pytest.mark.redis


def write_v1(redis_db) -> dict[str, dict]:
    """A v1 store as users left it: live and archived sessions, names, metadata, messages."""
    v1 = V1Store(redis_db, timeout_seconds=3600)
    made = {}
    live = v1.create_session("John Doe", "mental_health_nurse", display_name="Evening", metadata={"k": [1, 2.5]})
    v1.append_messages(live["session_id"], [v1_message("user", f"m{i}") for i in range(1203)])
    made["live"] = live
    kept = v1.create_session("John Doe", "creative_writer", description="a poem", metadata={"big": 12345678901234567})
    v1.append_messages(kept["session_id"], [v1_message("user", "ünïcode ✓"), v1_message("assistant", "ok")])
    v1.update_session(kept["session_id"], {"archived": True})
    made["archived"] = kept
    made["other"] = v1.create_session("user_visitor123", "default")
    short = V1Store(redis_db, timeout_seconds=1).create_session("Gone Soon", "default")
    made["expired"] = short
    return made


def test_migrate_copies_every_v1_session_and_a_second_run_changes_nothing(app, redis_db):
    made = write_v1(redis_db)
    time.sleep(1.2)  # "Gone Soon" expires, as it would have in v1 too
    runner = app.test_cli_runner()
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    assert client.get("/api/sessions").get_json()["count"] == 0  # v1 is invisible before migrating

    first = runner.invoke(args=["store", "migrate"], catch_exceptions=False)

    assert first.exit_code == 0, first.output
    assert "Migrated 3 session(s) with 1205 message(s); 0 already migrated, 1 expired or gone." in first.output
    listed = client.get("/api/sessions?user_id=John%20Doe").get_json()
    assert listed["count"] == 1
    archived = client.get("/api/sessions?user_id=John%20Doe&archived=true").get_json()["sessions"]
    assert [s["description"] for s in archived] == ["a poem"]
    assert archived[0]["metadata"] == {"big": 12345678901234567} and archived[0]["expires_at"] is None
    # the old ids keep working, and lead to everything they held
    old_live = made["live"]["session_id"]
    session = client.get(f"/api/sessions/{old_live}").get_json()
    assert session["display_name"] == "Evening" and session["metadata"] == {"k": [1, 2.5]}
    assert session["message_count"] == 1203 and session["persona"] == "mental_health_nurse"
    assert session["created_at"] == made["live"]["created_at"]
    assert session["expires_at"] == made["live"]["expires_at"] or session["expires_at"] > made["live"]["expires_at"]
    new_id = redis_db.get(f"chatapp:v2:alias:{{{old_live}}}")
    [v2_key] = [k for k in redis_db.scan_iter(f"chatapp:v2:*:s:{new_id}")]
    assert 3500 < redis_db.pttl(v2_key) / 1000 <= 3600  # the remaining time, kept
    page = client.get(f"/api/sessions/{old_live}/messages?limit=3").get_json()
    assert [m["content"] for m in page["messages"]] == ["m1200", "m1201", "m1202"]
    history = client.get(f"/api/session/{made['archived']['session_id']}/history").get_json()
    assert [m["content"] for m in history["messages"]] == ["ünïcode ✓", "ok"]
    assert client.get("/api/session/John%20Doe/history").get_json()["message_count"] == 1203
    before = {key: redis_db.dump(key) for key in redis_db.scan_iter("chatapp:v2:*")}

    second = runner.invoke(args=["store", "migrate"], catch_exceptions=False)

    assert "Migrated 0 session(s) with 0 message(s); 3 already migrated, 1 expired or gone." in second.output
    after = {key: redis_db.dump(key) for key in redis_db.scan_iter("chatapp:v2:*")}
    assert after == before


def test_migrate_with_delete_v1_leaves_no_v1_key(app, redis_db):
    write_v1(redis_db)
    result = app.test_cli_runner().invoke(args=["store", "migrate", "--delete-v1"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert list(redis_db.scan_iter("chatapp:v1:*")) == []
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    assert client.get("/api/sessions?user_id=John%20Doe").get_json()["count"] == 1


def test_the_app_notes_once_that_a_migration_is_pending(app, redis_db, caplog):
    write_v1(redis_db)
    client = app.test_client()

    client.get("/health")
    client.get("/health")

    notes = [r for r in caplog.records if "store migrate" in r.getMessage()]
    assert len(notes) == 1


def test_migrated_sessions_are_found_by_search(app, redis_db):
    """import.lua, which the migration writes through, keeps the search index like any write."""
    write_v1(redis_db)
    app.test_cli_runner().invoke(args=["store", "migrate"], catch_exceptions=False)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"

    poem = client.get("/api/search", query_string={"q": "unicode poem", "user_id": "John Doe"}).get_json()
    late = client.get("/api/search", query_string={"q": "m1202", "user_id": "John Doe"}).get_json()

    assert [r["description"] for r in poem["results"]] == ["a poem"]
    assert poem["results"][0]["snippets"][0]["text"] == "ünïcode ✓"
    assert late["results"][0]["snippets"][0]["message_index"] == 1202
