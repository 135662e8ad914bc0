"""CI runs exactly what README.md tells a newcomer to run."""

from __future__ import annotations

import re

from chatapp.settings import PROJECT_ROOT


def _shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", markdown, re.S)


def test_ci_runs_the_readme_test_command():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    commands = [line for block in _shell_blocks(readme) for line in block.splitlines() if "pytest" in line]
    ci = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()

    assert commands, "README.md shows no test command"
    assert commands[0].strip() in [line.strip() for line in ci]


def test_ci_checks_style_and_types_before_the_tests():
    ci = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")

    checks = [
        ci.index(".venv/bin/ruff check ."),
        ci.index(".venv/bin/ruff format --check ."),
        ci.index(".venv/bin/mypy"),
    ]
    assert checks == sorted(checks)
    assert checks[-1] < ci.index("-m pytest")
