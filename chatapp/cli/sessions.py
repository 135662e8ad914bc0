"""``flask sessions …``: list, inspect, delete and tidy stored sessions."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from chatapp.cli.output import echo_json, printable, store_command, table
from chatapp.schemas import history_schema, session_list_schema, session_schema
from chatapp.storage import get_store

sessions_cli = AppGroup("sessions", help="List, inspect, delete and tidy stored sessions.")


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
        echo_json(
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
        table(rows, ["SESSION", "USER", "PERSONA", "MESSAGES", "LAST ACTIVITY", "NAME"])
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
        echo_json(
            {
                "session": session_schema.dump(session),
                **history_schema.dump({**session, "message_count": len(messages), "messages": messages}),
            }
        )
        return
    for key, value in session_schema.dump(session).items():
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value
        click.echo(f"{key + ':':15} {'' if value is None else printable(shown)}")
    click.echo("")
    for message in messages:
        text = printable(message["content"], lines=True)
        click.echo(f"[{printable(message['timestamp'])}] {printable(message['role'])}: {text}")
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
    expired = get_store().purge_expired()
    click.echo(f"Removed {expired} expired session(s) from the indexes.")
