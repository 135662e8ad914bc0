"""chatapp: multi-session chat with assistant personas, on Flask and Redis.

The factory only: load the configuration, register extensions and blueprints.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from chatapp import api, cli, errors, personas, storage, ui
from chatapp.api import health
from chatapp.settings import data_path, load_config
from chatapp.web import auth, headers, limits, metrics, request_log


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Application factory: configuration, extensions, blueprints, error handling."""
    request_log.configure_logging()  # first: the configuration's own warnings are JSON lines too
    app = Flask(
        __name__,
        template_folder=str(data_path("templates")),
        static_folder=str(data_path("static")),
    )
    load_config(app, test_config)
    register_extensions(app)
    register_blueprints(app)
    auth.check_declared(app)
    return app


def register_extensions(app: Flask) -> None:
    request_log.init_app(app)  # first: the request id and clock exist before any hook can fail
    metrics.init_app(app)
    personas.init_app(app)
    storage.init_app(app)
    auth.init_app(app)
    limits.init_app(app)  # after auth: limits count per visitor or API key
    headers.init_app(app)
    errors.init_app(app)
    cli.init_app(app)


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(ui.bp)
