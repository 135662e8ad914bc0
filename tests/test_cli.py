"""The operators' flask commands against the real test redis-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from chatapp.settings import PROJECT_ROOT
from chatapp.storage import SessionStore, make_message
from chatapp.storage.keys import SHARDS, index_key, session_key, shard_of_session, summaries_key
from tests.servers import free_port


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def store(redis_server, redis_db) -> SessionStore:
    return SessionStore(redis_db, timeout_seconds=3600)


def run(runner: FlaskCliRunner, *args: str):
    return runner.invoke(args=list(args), catch_exceptions=False)


def assert_clean_failure(result, *phrases: str) -> None:
    """Exit status 1 and one line starting with Error:, no traceback."""
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


# --- sessions list ------------------------------------------------------------------------


def test_sessions_list_shows_live_sessions_newest_first(runner, store):
    older = store.create_session("Ann Lee", "default", display_name="Taxes")["session_id"]
    newer = store.create_session("Bob", "technical_support")["session_id"]
    store.append_messages(newer, [make_message("user", "hi")])

    result = run(runner, "sessions", "list")

    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["SESSION", "USER", "PERSONA", "MESSAGES", "LAST", "ACTIVITY", "NAME"]
    assert lines[1].startswith(newer) and "technical_support" in lines[1]
    assert lines[2].startswith(older) and "Ann Lee" in lines[2] and lines[2].endswith("Taxes")
    assert lines[-1] == "1-2 of 2 live session(s)"


def test_sessions_list_filters_by_user_persona_and_archived(runner, store):
    ann = store.create_session("ann", "default")["session_id"]
    store.create_session("bob", "default")
    ann_support = store.create_session("ann", "technical_support")["session_id"]
    archived = store.create_session("ann", "default")["session_id"]
    store.update_session(archived, {"archived": True})

    by_user = json.loads(run(runner, "sessions", "list", "--user", "ann", "--json").output)
    by_both = json.loads(run(runner, "sessions", "list", "--user", "ann", "--persona", "default", "--json").output)
    only_archived = json.loads(run(runner, "sessions", "list", "--archived", "--json").output)

    assert {s["session_id"] for s in by_user["sessions"]} == {ann, ann_support}
    assert [s["session_id"] for s in by_both["sessions"]] == [ann]
    assert [s["session_id"] for s in only_archived["sessions"]] == [archived]
    assert only_archived["sessions"][0]["archived"] is True
    assert by_user["count"] == 2 and by_user["next_offset"] is None


def test_sessions_list_json_matches_the_api_shape(runner, client, store):
    store.create_session("ann", "default", metadata={"k": "v"})

    from_cli = json.loads(run(runner, "sessions", "list", "--json").output)
    from_api = client.get("/api/sessions").get_json()

    assert from_cli == from_api


def test_sessions_list_with_nothing_stored(runner, redis_db):
    result = run(runner, "sessions", "list", "--user", "nobody")

    assert result.exit_code == 0
    assert result.output == "0 live session(s)\n"


# --- show / delete -------------------------------------------------------------------------


def test_sessions_show_prints_metadata_and_messages(runner, store):
    sid = store.create_session("ann", "default", display_name="Trip", metadata={"k": "v"})["session_id"]
    store.append_messages(sid, [make_message("user", "Where to?"), make_message("assistant", "Lisbon.")])

    result = run(runner, "sessions", "show", sid)

    assert result.exit_code == 0
    assert f"session_id:     {sid}" in result.output
    assert "display_name:   Trip" in result.output
    assert 'metadata:       {"k": "v"}' in result.output
    assert "message_count:  2" in result.output
    assert result.output.index("user: Where to?") < result.output.index("assistant: Lisbon.")


def test_sessions_show_json_has_session_and_messages(runner, store):
    sid = store.create_session("ann", "default")["session_id"]
    store.append_messages(sid, [make_message("user", "hé 🙂")])

    shown = json.loads(run(runner, "sessions", "show", sid, "--json").output)

    assert shown["session"]["session_id"] == sid and shown["session"]["message_count"] == 1
    assert [m["content"] for m in shown["messages"]] == ["hé 🙂"]


def test_sessions_delete_removes_the_session_and_its_index_entries(runner, store, redis_db):
    sid = store.create_session("ann", "default")["session_id"]

    result = run(runner, "sessions", "delete", sid)

    assert result.exit_code == 0 and result.output == f"Deleted {sid}\n"
    assert store.get_session(sid) is None
    assert redis_db.zscore(index_key(False, shard=shard_of_session(sid)), sid) is None
    assert redis_db.zscore(index_key(False, "ann"), sid) is None


@pytest.mark.parametrize("command", ["show", "delete"])
@pytest.mark.parametrize("session_id", ["session_nobody_1_abc", "not-a-session-id", "../../etc"])
def test_unknown_session_ids_fail_cleanly(runner, redis_db, command, session_id):
    assert_clean_failure(run(runner, "sessions", command, session_id), "no session", session_id)


# --- purge-expired -------------------------------------------------------------------------


def live_entries(redis_db) -> list[str]:
    """Every entry of every shard's index of live sessions."""
    return sorted(sid for shard in range(SHARDS) for sid in redis_db.zrange(index_key(False, shard=shard), 0, -1))


def test_purge_expired_removes_only_expired_index_entries_and_says_how_many(runner, redis_server, redis_db):
    brief = SessionStore(redis_db, timeout_seconds=1)
    lasting = SessionStore(redis_db, timeout_seconds=3600)
    gone = [brief.create_session(f"brief {i}", "creative_writer")["session_id"] for i in range(3)]
    kept = lasting.create_session("brief 0", "default")["session_id"]
    archived = brief.create_session("keeper", "default")["session_id"]
    brief.update_session(archived, {"archived": True})
    deadline = time.monotonic() + 5
    while redis_db.exists(*[session_key(s) for s in gone]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_entries(redis_db) == sorted([*gone, kept])  # the indexes still name the expired ones

    result = run(runner, "sessions", "purge-expired")

    assert result.exit_code == 0
    assert result.output == "Removed 3 expired session(s) from the indexes.\n"
    assert live_entries(redis_db) == [kept]
    assert redis_db.zrange(index_key(False, "brief 0"), 0, -1) == [kept]
    assert redis_db.zrange(index_key(False, "brief 0", "creative_writer"), 0, -1) == []
    assert redis_db.zrange(index_key(True, "keeper"), 0, -1) == [archived]  # archived never expires
    summaries = [sid for shard in range(SHARDS) for sid in redis_db.hkeys(summaries_key(shard))]
    assert sorted(summaries) == sorted([kept, archived])
    again = run(runner, "sessions", "purge-expired")
    assert again.output == "Removed 0 expired session(s) from the indexes.\n"


# --- Redis out of reach --------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["sessions", "list"],
        ["sessions", "list", "--json"],
        ["sessions", "show", "session_x_1_abc"],
        ["sessions", "delete", "session_x_1_abc"],
        ["sessions", "purge-expired"],
    ],
)
def test_store_commands_fail_cleanly_when_redis_is_unreachable(args, make_app):
    port = free_port()  # nothing listens here
    app = make_app(REDIS_URL=f"redis://:s3cret@127.0.0.1:{port}/0")
    result = app.test_cli_runner().invoke(args=args, catch_exceptions=False)
    assert_clean_failure(result, f"cannot reach Redis at redis://127.0.0.1:{port}/0", "ConnectionError")
    assert "s3cret" not in result.output


# --- personas ------------------------------------------------------------------------------


def test_personas_list(runner):
    result = run(runner, "personas", "list")

    assert result.exit_code == 0
    assert result.output.splitlines()[0].split() == ["ID", "NAME", "DESCRIPTION"]
    assert any(line.startswith("mental_health_nurse  Mental Health Nurse") for line in result.output.splitlines())
    as_json = json.loads(run(runner, "personas", "list", "--json").output)
    assert "default" in {p["id"] for p in as_json["personas"]} and "system_prompt" not in as_json["personas"][0]


def test_personas_check_accepts_the_shipped_file(runner):
    result = run(runner, "personas", "check")

    assert result.exit_code == 0
    assert result.output.startswith(str(PROJECT_ROOT / "config" / "personas.yaml") + ": OK, 4 persona(s)")


GOOD_ENTRY = "  name: N\n  description: D\n  system_prompt: S\n  greeting: G\n"


@pytest.mark.parametrize(
    ("content", "phrases"),
    [
        (
            "default:\n" + GOOD_ENTRY + "poet:\n  name: P\n  description: D\n  system_prompt: S\n",
            ["persona 'poet'", "field 'greeting'", "Missing data"],
        ),
        ("default:\n" + GOOD_ENTRY + "  temperature: 7\n", ["persona 'default'", "field 'temperature'"]),
        ("default:\n" + GOOD_ENTRY + "  colour: red\n", ["persona 'default'", "field 'colour'"]),
        ("poet:\n" + GOOD_ENTRY, ["'default' is required"]),
        ("default: [1, 2\n", ["not valid YAML"]),
        ("bad id!:\n" + GOOD_ENTRY, ["persona id 'bad id!'"]),
    ],
)
def test_personas_check_names_the_bad_entry_and_field(runner, tmp_path, content, phrases):
    path = tmp_path / "personas.yaml"
    path.write_text(content, encoding="utf-8")

    result = run(runner, "personas", "check", str(path))

    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: {path}: ") and "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in result.output


def test_personas_check_missing_file(runner, tmp_path):
    missing = tmp_path / "nope.yaml"
    assert_clean_failure(run(runner, "personas", "check", str(missing)), str(missing), "cannot read")


# --- the real command line -----------------------------------------------------------------


def flask_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    flask = Path(sys.executable).with_name("flask")
    return subprocess.run(
        [str(flask), "--app", "wsgi", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_flask_command_line_lists_sessions_from_the_configured_redis(redis_server, store):
    sid = store.create_session("cli user", "default")["session_id"]

    done = flask_cli("sessions", "list", "--json", CHATAPP_REDIS_URL=redis_server.url)

    assert done.returncode == 0, done.stderr
    assert [s["session_id"] for s in json.loads(done.stdout)["sessions"]] == [sid]


def test_flask_command_line_reports_a_broken_configured_personas_file_without_traceback(tmp_path):
    bad = tmp_path / "personas.yaml"
    bad.write_text("default:\n" + GOOD_ENTRY + "  max_tokens: -5\n", encoding="utf-8")

    done = flask_cli("personas", "check", CHATAPP_PERSONAS_FILE=str(bad), CHATAPP_REDIS_URL="memory://")

    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "persona 'default'" in done.stderr and "field 'max_tokens'" in done.stderr
