"""Operator commands: ``flask sessions …`` and ``flask personas …``.

Every failure an operator can cause or meet (an unknown id, a bad personas file, Redis
out of reach) prints one line starting with ``Error:`` and exits with status 1.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from redis.exceptions import RedisError

from chatapp.personas import get_personas, load_personas
from chatapp.redis_client import get_store
from chatapp.schemas import history_schema, persona_list_schema, session_list_schema, session_schema
from chatapp.settings import ConfigError

sessions_cli = AppGroup("sessions", help="List, inspect, delete and tidy stored sessions.")
personas_cli = AppGroup("personas", help="Show and validate the assistant personas.")


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
        except RedisError as exc:
            raise click.ClickException(
                f"cannot reach Redis at {_redis_location()}: {type(exc).__name__}: {exc}"
            ) from exc

    return wrapper


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(len(str(v)) for v in column) for column in zip(headers, *rows, strict=True)]
    for row in [headers, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


# --- sessions ------------------------------------------------------------------------------


@sessions_cli.command("list")
@click.option("--user", "user_id", help="Only this user's sessions.")
@click.option("--persona", help="Only sessions with this persona id.")
@click.option("--archived", is_flag=True, help="Archived sessions instead of live ones.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0))
@click.option("--json", "as_json", is_flag=True, help="The API's JSON instead of a table.")
@store_command
def list_sessions(
    user_id: str | None, persona: str | None, archived: bool, limit: int, offset: int, as_json: bool
) -> None:
    """Sessions, most recent activity first."""
    sessions, total = get_store().list_sessions(
        user_id=user_id, persona=persona, archived=archived, offset=offset, limit=limit
    )
    if as_json:
        end = offset + len(sessions)
        _echo_json(
            session_list_schema.dump(
                {
                    "sessions": sessions,
                    "count": total,
                    "limit": limit,
                    "offset": offset,
                    "next_offset": end if end < total else None,
                }
            )
        )
        return
    rows = [
        [
            s["session_id"],
            s["user_id"],
            s["persona"],
            str(s["message_count"]),
            s["last_activity"],
            s["display_name"] or "",
        ]
        for s in sessions
    ]
    if rows:
        _table(rows, ["SESSION", "USER", "PERSONA", "MESSAGES", "LAST ACTIVITY", "NAME"])
    shown = f"{offset + 1}-{offset + len(sessions)} of " if sessions else ""
    click.echo(f"{shown}{total} {'archived' if archived else 'live'} session(s)")


@sessions_cli.command("show")
@click.argument("session_id")
@click.option("--json", "as_json", is_flag=True, help="The session and its messages as JSON.")
@store_command
def show_session(session_id: str, as_json: bool) -> None:
    """A session's details and all its messages."""
    found = get_store().read_messages(session_id)
    if found is None:
        raise click.ClickException(f"no session {session_id!r}")
    session, messages, _ = found
    if as_json:
        _echo_json(
            {
                "session": session_schema.dump(session),
                **history_schema.dump({**session, "message_count": len(messages), "messages": messages}),
            }
        )
        return
    for key, value in session_schema.dump(session).items():
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value
        click.echo(f"{key + ':':15} {'' if value is None else shown}")
    click.echo("")
    for message in messages:
        click.echo(f"[{message['timestamp']}] {message['role']}: {message['content']}")
    if not messages:
        click.echo("(no messages)")


@sessions_cli.command("delete")
@click.argument("session_id")
@store_command
def delete_session(session_id: str) -> None:
    """Delete a session and all its messages."""
    if not get_store().delete_session(session_id):
        raise click.ClickException(f"no session {session_id!r}")
    click.echo(f"Deleted {session_id}")


@sessions_cli.command("purge-expired")
@store_command
def purge_expired() -> None:
    """Remove expired sessions' entries from the indexes (their data expired by itself)."""
    expired, stale = get_store().purge_expired()
    click.echo(
        f"Removed {expired} expired session(s) and {stale} stale user/persona index entr{'y' if stale == 1 else 'ies'}."
    )


# --- personas ------------------------------------------------------------------------------


@personas_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="The API's JSON instead of a table.")
def list_personas(as_json: bool) -> None:
    """The personas this app was started with."""
    personas = list(get_personas().values())
    if as_json:
        _echo_json(persona_list_schema.dump({"personas": [vars(p) for p in personas], "count": len(personas)}))
        return
    _table([[p.id, p.name, p.description] for p in personas], ["ID", "NAME", "DESCRIPTION"])


@personas_cli.command("check")
@click.argument("file", required=False)
def check_personas(file: str | None) -> None:
    """Validate a personas file (default: the configured one)."""
    path = file or current_app.config["PERSONAS_FILE"]
    try:
        personas = load_personas(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{path}: OK, {len(personas)} persona(s): {', '.join(personas)}")


def init_app(app: Flask) -> None:
    app.cli.add_command(sessions_cli)
    app.cli.add_command(personas_cli)
