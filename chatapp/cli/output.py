"""What every operator command shares: one-line errors for Redis failures, JSON and tables."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
from flask import current_app

from chatapp.storage import StoreUnavailable


def _redis_location() -> str:
    """CHATAPP_REDIS_URL without any password, fit to print."""
    parts = urlsplit(current_app.config["REDIS_URL"])
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def store_command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a Redis failure into one readable line and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except StoreUnavailable as exc:
            raise click.ClickException(
                f"cannot reach Redis at {_redis_location()}: {type(exc).__name__}: {exc}"
            ) from exc

    return wrapper


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(len(str(v)) for v in column) for column in zip(headers, *rows, strict=True)]
    for row in [headers, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
