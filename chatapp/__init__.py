"""chatapp: multi-session chat with assistant personas, on Flask and Redis."""

from __future__ import annotations

from typing import Any

from flask import Flask

from chatapp.settings import PROJECT_ROOT, load_config


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Application factory: configuration, extensions, blueprints, error handling."""
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    load_config(app, test_config)
    register_extensions(app)
    register_blueprints(app)
    return app


def register_extensions(app: Flask) -> None:
    from chatapp import auth, cli, errors, limits, metrics, personas, redis_client, request_log, security_headers

    request_log.init_app(app)
    metrics.init_app(app)
    personas.init_app(app)
    redis_client.init_app(app)
    auth.init_app(app)
    limits.init_app(app)  # after auth: limits count per visitor or API key
    security_headers.init_app(app)
    errors.init_app(app)
    cli.init_app(app)


def register_blueprints(app: Flask) -> None:
    from chatapp import api, health, ui

    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(ui.bp)
