"""``flask sessions export`` and ``flask sessions import`` against the real test redis-server."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from tests.transfer_helpers import CHATGPT, key_dump


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def test_import_prints_counts_and_skips_then_export_writes_them_back(runner, tmp_path):
    imported = runner.invoke(
        args=["sessions", "import", str(CHATGPT), "--user", "Ada", "--persona", "technical_support"]
    )

    assert imported.exit_code == 0, imported.output
    lines = imported.output.splitlines()
    assert lines[0].startswith("imported session_Ada_") and "4 message(s)  Café ☕ plans — 日本語" in lines[0]
    assert lines[2] == "skipped  #2  Only a system prompt: It has no user or assistant text on its current branch."
    assert lines[-1] == "Imported 2 session(s) for Ada; skipped 1."

    out = tmp_path / "ada.json"
    exported = runner.invoke(args=["sessions", "export", "--user", "Ada", "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    document = json.loads(out.read_text(encoding="utf-8"))
    assert [s["display_name"] for s in document["sessions"]] == ["Café ☕ plans — 日本語", None]
    assert {s["persona"] for s in document["sessions"]} == {"technical_support"}


def test_export_as_markdown_is_a_zip_on_stdout(runner):
    runner.invoke(args=["sessions", "import", str(CHATGPT), "--user", "Ada"])

    result = runner.invoke(args=["sessions", "export", "--user", "Ada", "--format", "markdown"])

    assert result.exit_code == 0
    archive = zipfile.ZipFile(io.BytesIO(result.stdout_bytes))
    # the untitled conversation is titled by its first message (issue 12), not by persona and day
    assert sorted(archive.namelist()) == ["A question without times.md", "Café-plans-日本語.md"]


def test_a_bad_file_is_one_error_line_and_nothing_written(runner, redis_db, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(CHATGPT.read_bytes()[:3000])
    before = key_dump(redis_db)

    result = runner.invoke(args=["sessions", "import", str(bad), "--user", "Ada"])

    assert result.exit_code == 1 and result.output.startswith("Error: The file is not valid JSON")
    assert key_dump(redis_db) == before
