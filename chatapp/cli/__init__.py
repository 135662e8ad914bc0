"""Operator commands, one module per group: ``flask sessions`` (``export`` and ``import`` in
``transfer``), ``personas``, ``quotas``, ``store`` and ``search``.

Every failure an operator can cause or meet (an unknown id, a bad personas file, Redis
out of reach) prints one line starting with ``Error:`` and exits with status 1.
"""

from __future__ import annotations

from flask import Flask

from chatapp.cli.personas import personas_cli
from chatapp.cli.quotas import quotas_cli
from chatapp.cli.search import search_cli
from chatapp.cli.sessions import sessions_cli
from chatapp.cli.store import store_cli
from chatapp.cli.transfer import export_sessions, import_sessions

__all__ = ["export_sessions", "import_sessions", "init_app"]  # transfer adds them to sessions_cli


def init_app(app: Flask) -> None:
    app.cli.add_command(sessions_cli)
    app.cli.add_command(personas_cli)
    app.cli.add_command(store_cli)
    app.cli.add_command(quotas_cli)
    app.cli.add_command(search_cli)
