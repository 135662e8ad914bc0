"""Configuration layers: built-in defaults, config/config.py, CHATAPP_* environment, test_config."""

from __future__ import annotations

import logging
import runpy
from pathlib import Path
from typing import Any

from flask import Flask

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MEMORY_URL = "memory://"
DEV_SECRET_KEY = "dev-only-insecure-secret-key"  # noqa: S105 - refused in production

DEFAULTS: dict[str, Any] = {
    "ENV": "development",  # "production" turns on the safety checks below
    "REDIS_URL": None,  # None means the embedded store in development
    "SESSION_TIMEOUT": 3600,
    "PERSONAS_FILE": str(PROJECT_ROOT / "config" / "personas.yaml"),
    "SECRET_KEY": DEV_SECRET_KEY,
    "MAX_CONTENT_LENGTH": 1024 * 1024,  # request bodies over 1 MB get 413
    "MAX_MESSAGE_LENGTH": 32_000,
    "API_KEYS": "",  # comma-separated operator keys for Authorization: Bearer
    "OPEN_API": False,  # every caller is an operator: the guide's single-user mode
    "PERMANENT_SESSION_LIFETIME": 365 * 24 * 3600,  # how long a browser keeps its visitor id
    "METRICS_ALLOW": "",  # comma-separated networks (CIDR) that may read /metrics without a key
}

log = logging.getLogger(__name__)


class ConfigError(RuntimeError):
    """A setting that makes the app unsafe or unable to start; the message says which."""


def load_config(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill app.config from every layer, most specific last, then check the result."""
    app.config.update(DEFAULTS)
    config_file = PROJECT_ROOT / "config" / "config.py"
    if config_file.exists():
        app.config.update(_read_config_file(config_file))
    app.config.from_prefixed_env("CHATAPP")
    if test_config:
        app.config.update(test_config)
    _check(app)


def _read_config_file(path: Path) -> dict[str, Any]:
    """config/config.py may use the guide's lower-case names (``session_timeout``)."""
    values = runpy.run_path(str(path))
    return {name.upper(): value for name, value in values.items() if not name.startswith("_")}


def _check(app: Flask) -> None:
    config = app.config
    production = config["ENV"] == "production"
    timeout = config["SESSION_TIMEOUT"]
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise ConfigError(f"SESSION_TIMEOUT must be a whole number of seconds >= 1, got {timeout!r}")
    if not config["REDIS_URL"]:
        if production:
            raise ConfigError("CHATAPP_REDIS_URL is required when CHATAPP_ENV=production")
        config["REDIS_URL"] = MEMORY_URL
    if config["REDIS_URL"].startswith(MEMORY_URL):
        if production:
            raise ConfigError(
                "CHATAPP_REDIS_URL=memory:// keeps data only in this process; "
                "production needs a real Redis (redis://, rediss:// or unix://)"
            )
        if not config.get("TESTING"):
            log.warning(
                "Using the embedded in-memory store (memory://): every session is lost when "
                "this process stops. Set CHATAPP_REDIS_URL=redis://... to keep data."
            )
    if production and config["SECRET_KEY"] in (None, "", DEV_SECRET_KEY):
        raise ConfigError("CHATAPP_SECRET_KEY must be set to a long random value in production")
