"""What every operator command shares: one-line errors for Redis failures, JSON and tables."""

from __future__ import annotations

import functools
import json
import re
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


# What a visitor could type to take over the operator's terminal: C0 controls, DEL, C1 controls
# (U+009B is a CSI on its own), and the bidirectional overrides that reorder what is shown.
_BEYOND_ASCII = r"\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
UNSAFE = re.compile(rf"[\x00-\x1f{_BEYOND_ASCII}]")
UNSAFE_IN_LINES = re.compile(rf"[\x00-\x08\x0b-\x1f{_BEYOND_ASCII}]")  # tab and newline kept
UNSAFE_IN_JSON = re.compile(rf"[{_BEYOND_ASCII}]")  # json.dumps escapes C0 controls itself


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: Any, lines: bool = False) -> str:
    """Text stored by visitors, safe to print: control characters shown as ``\x1b``-style escapes.

    With ``lines`` tab and newline stay (a message's own line breaks); names never keep them.
    """
    return (UNSAFE_IN_LINES if lines else UNSAFE).sub(_escape, str(value))


def echo_json(data: Any) -> None:
    # ensure_ascii=False keeps text readable but would let C1 controls and bidi overrides
    # through raw: those become \u escapes (the same JSON value).
    text = json.dumps(data, indent=2, ensure_ascii=False)
    click.echo(UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def table(rows: list[list[str]], headers: list[str]) -> None:
    cells = [[printable(v) for v in row] for row in [headers, *rows]]
    widths = [max(len(v) for v in column) for column in zip(*cells, strict=True)]
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
