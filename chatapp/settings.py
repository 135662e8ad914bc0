"""Configuration layers: built-in defaults, config/config.py, CHATAPP_* environment, test_config."""

from __future__ import annotations

import logging
import os
import runpy
import threading
from pathlib import Path
from typing import Any

from flask import Flask

PACKAGE_ROOT = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_ROOT.parent


def data_path(name: str) -> Path:
    """A folder the app ships (templates, static, config).

    In the repository these are top-level folders beside ``chatapp/``; an installed wheel
    carries them inside the package (setup.cfg maps them there), so both layouts work.
    """
    installed = PACKAGE_ROOT / name
    return installed if installed.is_dir() else PROJECT_ROOT / name


MEMORY_URL = "memory://"
DEFAULT_LLM_MAX_SECONDS = 300
DEV_SECRET_KEY = "dev-only-insecure-secret-key"  # noqa: S105 - refused in production
MIN_SECRET_KEY_LENGTH = 32  # characters; secrets.token_urlsafe(32) gives 43
ENV_PREFIX = "CHATAPP_"

DEFAULTS: dict[str, Any] = {
    "ENV": "development",  # "production" turns on the safety checks below
    "REDIS_URL": None,  # None means the embedded store in development
    "SESSION_TIMEOUT": 3600,
    "REDIS_TIMEOUT": 1.5,  # seconds a Redis command may take (retried once) before the request answers 503
    # Per process; a request waits (up to REDIS_TIMEOUT) for a free one. Not fewer: under gevent a
    # request keeps its connection until its worker's loop comes back to it (bench/results.md).
    "REDIS_MAX_CONNECTIONS": 128,
    "PERSONAS_FILE": str(data_path("config") / "personas.yaml"),
    "SECRET_KEY": DEV_SECRET_KEY,
    "SECRET_KEY_FALLBACKS": "",  # comma-separated earlier keys: cookies they signed stay valid
    "MAX_CONTENT_LENGTH": 1024 * 1024,  # request bodies over 1 MB get 413
    "MAX_IMPORT_BYTES": 50 * 1024 * 1024,  # POST /api/import alone takes files up to this (streamed)
    "MAX_MESSAGE_LENGTH": 32_000,
    "API_KEYS": "",  # comma-separated operator keys for Authorization: Bearer
    "OPEN_API": False,  # every caller is an operator: the guide's single-user mode
    "PERMANENT_SESSION_LIFETIME": 365 * 24 * 3600,  # how long a browser keeps its visitor id
    "LLM_BASE_URL": None,  # an OpenAI-compatible endpoint, e.g. http://localhost:11434/v1; None: offline
    "LLM_MODEL": None,  # the model name that endpoint serves
    "LLM_API_KEY": None,  # optional; local servers usually need none
    "LLM_TIMEOUT": 60,  # seconds, for connecting and for each wait for data
    "LLM_MAX_SECONDS": None,  # seconds for a whole reply; None: 300, or LLM_TIMEOUT when that is longer
    "LLM_MAX_HISTORY": 20,  # earlier messages sent along as context
    "SSE_KEEPALIVE": 15,  # seconds between keep-alive comments on an idle event stream
    "SESSION_COOKIE_SECURE": None,  # unset: on in production (cookie only over TLS), off in development
    "TRUSTED_PROXIES": 0,  # reverse proxies in front of the app whose X-Forwarded-* headers count
    "MESSAGE_RATE_LIMIT": "30 per minute",  # message posts (and reply retries) per visitor or key
    "SESSION_RATE_LIMIT": "20 per minute",  # session creations per visitor or key
    "ADDRESS_MESSAGE_RATE_LIMIT": "120 per minute",  # message posts per client address (all its cookies)
    "ADDRESS_SESSION_RATE_LIMIT": "60 per minute",  # session creations per client address
    "SHARE_RATE_LIMIT": "10 per minute",  # share links made per visitor or key
    "ADDRESS_SHARE_RATE_LIMIT": "30 per minute",  # share links made per client address
    "ADDRESS_SHARE_VIEW_RATE_LIMIT": "120 per minute",  # share pages (and their JSON) per client address
    "MAX_SHARES_PER_USER": 100,  # share links one user may have working at once (0 = no limit)
    "SEARCH_RATE_LIMIT": "120 per minute",  # searches per visitor or key (GET /api/search)
    # auto: the Redis Query Engine (FT.*) where a single server has it, else the built-in index
    "SEARCH_ENGINE": "auto",
    "RATELIMIT_ENABLED": True,  # false turns every rate limit off (benchmarks, load tests)
    "RATELIMIT_HEADERS_ENABLED": True,  # X-RateLimit-* and Retry-After on limited endpoints
    "RATELIMIT_SWALLOW_ERRORS": True,  # limiter storage down: serve the request unlimited, never 500
    "METRICS_ALLOW": "",  # comma-separated networks (CIDR) that may read /metrics without a key
    # What one visitor may keep (0 = no limit); an operator can change them per user (flask quotas).
    "QUOTA_LIVE_SESSIONS": 200,
    "QUOTA_KEPT_SESSIONS": 1000,
    "QUOTA_MESSAGES_PER_SESSION": 10_000,
    "QUOTA_BYTES": 50 * 1024 * 1024,
}
QUOTA_SETTINGS = ("QUOTA_LIVE_SESSIONS", "QUOTA_KEPT_SESSIONS", "QUOTA_MESSAGES_PER_SESSION", "QUOTA_BYTES")
COUNT_SETTINGS = (*QUOTA_SETTINGS, "MAX_SHARES_PER_USER")  # whole numbers >= 0, 0 meaning no limit

# Settings that are on/off switches; the environment may spell them 1/0, true/false, yes/no, on/off.
BOOLEAN_SETTINGS = (
    "OPEN_API",
    "REDIS_CLUSTER",
    "SESSION_COOKIE_SECURE",
    "RATELIMIT_ENABLED",
    "RATELIMIT_HEADERS_ENABLED",
    "RATELIMIT_SWALLOW_ERRORS",
)
# Settings read from the environment as the text they are: from_prefixed_env decodes values as
# JSON, so CHATAPP_SECRET_KEY=123456 became an int and CHATAPP_API_KEYS=1e3 the float 1000.0.
TEXT_SETTINGS = (
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "API_KEYS",
    "REDIS_URL",
    "LLM_BASE_URL",
    "LLM_MODEL",
    "LLM_API_KEY",
    "METRICS_ALLOW",
    "MESSAGE_RATE_LIMIT",
    "SESSION_RATE_LIMIT",
    "ADDRESS_MESSAGE_RATE_LIMIT",
    "ADDRESS_SESSION_RATE_LIMIT",
    "SHARE_RATE_LIMIT",
    "ADDRESS_SHARE_RATE_LIMIT",
    "ADDRESS_SHARE_VIEW_RATE_LIMIT",
    "SEARCH_RATE_LIMIT",
    "SEARCH_ENGINE",
)
# CHATAPP_SEARCH_ENGINE's choices (chatapp/storage/search_engine.py checks it against these too)
SEARCH_ENGINES = ("auto", "built-in", "redis-query-engine")
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})

log = logging.getLogger(__name__)
# For the operator, not the visitor (whose offline reply just says so): in the log when the
# offline backend first answers (chatapp.assistant), and in /health for operators.
OFFLINE_HINT = (
    "No language model is configured, so replies say the assistant is offline: set CHATAPP_LLM_BASE_URL "
    "(any OpenAI-compatible endpoint) and CHATAPP_LLM_MODEL to connect one."
)
_hinted = threading.Event()


def hint_offline() -> None:
    """Tell the operator, once per process, how to connect a model (the visitor is told only
    that none is connected). Logged when the offline backend first answers, not at start-up,
    so that commands printing JSON (`flask sessions list --json`) print nothing else."""
    if not _hinted.is_set():
        _hinted.set()
        log.warning(OFFLINE_HINT)


class ConfigError(RuntimeError):
    """A setting that makes the app unsafe or unable to start; the message says which."""


def load_config(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill app.config from every layer, most specific last, then check the result."""
    app.config.update(DEFAULTS)
    config_file = data_path("config") / "config.py"
    if config_file.exists():
        app.config.update(_read_config_file(config_file))
    app.config.from_prefixed_env(ENV_PREFIX.rstrip("_"))
    for name in TEXT_SETTINGS:
        if ENV_PREFIX + name in os.environ:
            app.config[name] = os.environ[ENV_PREFIX + name]
    if test_config:
        app.config.update(test_config)
    _check(app)


def _read_config_file(path: Path) -> dict[str, Any]:
    """config/config.py may use the guide's lower-case names (``session_timeout``)."""
    values = runpy.run_path(str(path))
    return {name.upper(): value for name, value in values.items() if not name.startswith("_")}


def _flag(name: str, value: Any) -> bool:
    """A switch as a real bool: from_prefixed_env leaves ``False`` or ``off`` as (truthy) text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise ConfigError(f"{name} must be on or off (1/0, true/false, yes/no, on/off), got {value!r}")


def _check(app: Flask) -> None:
    config = app.config
    production = config["ENV"] == "production"
    if config.get("SESSION_COOKIE_SECURE") is None:
        config["SESSION_COOKIE_SECURE"] = production
    for name in BOOLEAN_SETTINGS:
        if name in config:
            config[name] = _flag(name, config[name])
    proxies = config["TRUSTED_PROXIES"]
    if isinstance(proxies, str) and proxies.strip().isdigit():
        proxies = config["TRUSTED_PROXIES"] = int(proxies)
    if isinstance(proxies, bool) or not isinstance(proxies, int) or proxies < 0:
        raise ConfigError(f"TRUSTED_PROXIES must be the number of proxies in front of the app, got {proxies!r}")
    for name in COUNT_SETTINGS:
        value = config[name]
        if isinstance(value, str) and value.strip().isdigit():
            value = config[name] = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be a whole number >= 0 (0: no limit), got {value!r}")
    import_bytes = config["MAX_IMPORT_BYTES"]
    if isinstance(import_bytes, str) and import_bytes.strip().isdigit():
        import_bytes = config["MAX_IMPORT_BYTES"] = int(import_bytes)
    if isinstance(import_bytes, bool) or not isinstance(import_bytes, int) or import_bytes < 1:
        raise ConfigError(f"MAX_IMPORT_BYTES must be a whole number of bytes >= 1, got {import_bytes!r}")
    redis_timeout = config["REDIS_TIMEOUT"]
    if isinstance(redis_timeout, bool) or not isinstance(redis_timeout, int | float) or not 0 < redis_timeout <= 60:
        raise ConfigError(f"REDIS_TIMEOUT must be a number of seconds between 0 and 60, got {redis_timeout!r}")
    pool = config["REDIS_MAX_CONNECTIONS"]
    if isinstance(pool, str) and pool.strip().isdigit():
        pool = config["REDIS_MAX_CONNECTIONS"] = int(pool)
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
        raise ConfigError(f"REDIS_MAX_CONNECTIONS must be a whole number >= 1, got {pool!r}")
    timeout = config["SESSION_TIMEOUT"]
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise ConfigError(f"SESSION_TIMEOUT must be a whole number of seconds >= 1, got {timeout!r}")
    engine = config["SEARCH_ENGINE"]
    if engine not in SEARCH_ENGINES:
        raise ConfigError(f"SEARCH_ENGINE must be one of {', '.join(SEARCH_ENGINES)}, got {engine!r}")
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
    _check_llm(config)
    _check_secret_keys(config, production)
    if production and not config["SESSION_COOKIE_SECURE"]:
        log.warning(
            "CHATAPP_SESSION_COOKIE_SECURE is off in production: browsers send the visitor cookie over "
            "plain HTTP too, where anyone on the network can read it and act as that visitor. Turn it "
            "off only where the app is reached without TLS at all."
        )


def _check_secret_keys(config: Any, production: bool) -> None:
    """The signing key and its fallbacks as text; production refuses a default or short key."""
    key = config["SECRET_KEY"]
    if key is not None and not isinstance(key, str | bytes):
        key = config["SECRET_KEY"] = str(key)  # set in config.py as a number: it is still text
    fallbacks = config.get("SECRET_KEY_FALLBACKS") or []
    if isinstance(fallbacks, str | bytes):
        fallbacks = fallbacks.decode() if isinstance(fallbacks, bytes) else fallbacks
        fallbacks = [part.strip() for part in fallbacks.split(",") if part.strip()]
    config["SECRET_KEY_FALLBACKS"] = [str(part) for part in fallbacks]
    if not production:
        return
    if key in (None, "", DEV_SECRET_KEY):
        raise ConfigError(
            "CHATAPP_SECRET_KEY must be set to a long random value in production, for example "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            f"CHATAPP_SECRET_KEY is {len(key)} characters long; production needs at least "
            f"{MIN_SECRET_KEY_LENGTH} random ones, for example python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'"
        )
    if DEV_SECRET_KEY in config["SECRET_KEY_FALLBACKS"]:
        raise ConfigError("CHATAPP_SECRET_KEY_FALLBACKS must not hold the development key in production")


def _check_llm(config: Any) -> None:
    """A half-configured model would silently answer offline: refuse it with the missing name."""
    for name in ("LLM_MODEL", "LLM_API_KEY"):  # config.py may give a number: it is still a name
        if isinstance(config[name], int | float) and not isinstance(config[name], bool):
            config[name] = str(config[name])
    base_url, model = config["LLM_BASE_URL"] or None, config["LLM_MODEL"] or None
    if base_url and not model:
        raise ConfigError("CHATAPP_LLM_BASE_URL is set but CHATAPP_LLM_MODEL is not: name the model to use")
    if model and not base_url:
        raise ConfigError(
            "CHATAPP_LLM_MODEL is set but CHATAPP_LLM_BASE_URL is not: give the OpenAI-compatible "
            "endpoint, for example http://localhost:11434/v1"
        )
    if base_url and not (isinstance(base_url, str) and base_url.startswith(("http://", "https://"))):
        raise ConfigError("CHATAPP_LLM_BASE_URL must start with http:// or https://")
    timeout = config["LLM_TIMEOUT"]
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
        raise ConfigError(f"LLM_TIMEOUT must be a number of seconds between 0 and 3600, got {timeout!r}")
    longest = config["LLM_MAX_SECONDS"]
    if longest is None:
        longest = config["LLM_MAX_SECONDS"] = max(DEFAULT_LLM_MAX_SECONDS, timeout)
    if isinstance(longest, bool) or not isinstance(longest, int | float) or not 0 < longest <= 86400:
        raise ConfigError(f"LLM_MAX_SECONDS must be a number of seconds between 0 and 86400, got {longest!r}")
    if longest < timeout:  # one silent wait may not outlast the whole reply
        raise ConfigError(f"LLM_MAX_SECONDS ({longest:g}) must be at least LLM_TIMEOUT ({timeout:g})")
    history = config["LLM_MAX_HISTORY"]
    if isinstance(history, bool) or not isinstance(history, int) or not 0 <= history <= 1000:
        raise ConfigError(f"LLM_MAX_HISTORY must be a whole number from 0 to 1000, got {history!r}")
    keepalive = config["SSE_KEEPALIVE"]
    if isinstance(keepalive, bool) or not isinstance(keepalive, int | float) or not 0 < keepalive <= 300:
        raise ConfigError(f"SSE_KEEPALIVE must be a number of seconds between 0 and 300, got {keepalive!r}")
