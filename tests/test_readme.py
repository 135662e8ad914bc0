"""README.md's commands do what it says: the first starts an app the REST examples work against."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

from chatapp.settings import PROJECT_ROOT
from tests.servers import AppServer, free_port, require_binary

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def _shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, re.S)


def _try_it_command() -> str:
    return next(line for block in _shell_blocks() for line in block.splitlines() if "flask --app wsgi run" in line)


def test_ci_runs_the_readme_test_command():
    tests = [line for block in _shell_blocks() for line in block.splitlines() if "pytest" in line]
    ci = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()

    assert tests, "README.md shows no test command"
    assert tests[0].strip() in [line.strip() for line in ci]


def test_ci_checks_style_and_types_before_the_tests():
    ci = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")

    checks = [
        ci.index(".venv/bin/ruff check ."),
        ci.index(".venv/bin/ruff format --check ."),
        ci.index(".venv/bin/mypy"),
    ]
    assert checks == sorted(checks)
    assert checks[-1] < ci.index("-m pytest")


def test_the_rest_examples_work_against_the_app_the_first_command_starts(tmp_path):
    """Start the app as the first command does (its environment, the embedded store) and run
    the REST block exactly as printed, with only the port changed."""
    started = _try_it_command().split("&&")[-1].strip()
    words = shlex.split(started)
    env = dict(word.split("=", 1) for word in words if re.match(r"^[A-Z_]+=", word))
    assert env.get("CHATAPP_API_KEYS"), "the first command must give the examples an operator key"
    port = free_port()
    cmd = [sys.executable, "-m", "flask", "--app", "wsgi", "run", "--port", str(port)]
    rest = next(block for block in _shell_blocks() if "$API/session/create" in block)
    script = rest.replace("http://127.0.0.1:5000/api", f"http://127.0.0.1:{port}/api")
    script = script.replace("curl -s ", 'curl -s -w "\\n%{http_code}\\n" ')
    env |= {"CHATAPP_REDIS_URL": None, "CHATAPP_ENV": None, "CHATAPP_OPEN_API": None, "FLASK_DEBUG": None}

    with AppServer(cmd, port, env=env, cwd=PROJECT_ROOT, log_path=tmp_path / "app.log"):
        done = subprocess.run(
            [require_binary("bash"), "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    lines = [line for line in done.stdout.splitlines() if line.strip()]
    answers = [(json.loads(body), int(status)) for body, status in zip(lines[::2], lines[1::2], strict=True)]
    (created, s1), (listing, s2), (history, s3), (cleared, s4) = answers
    assert (s1, s2, s3, s4) == (201, 200, 200, 200)
    assert created["user_id"] == "John Doe" and created["persona"] == "mental_health_nurse"
    assert created["metadata"] == {"custom_field": "value"}
    assert [s["session_id"] for s in listing["sessions"]] == [created["session_id"]]
    assert history["session_id"] == created["session_id"] and history["messages"] == []
    assert cleared["status"] == "success" and cleared["session_id"] == created["session_id"]
