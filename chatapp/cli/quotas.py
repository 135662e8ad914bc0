"""``flask quotas …``: what one user may keep, set or lifted by an operator."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from chatapp.cli.output import store_command, table
from chatapp.storage import QUOTA_NAMES, get_store

quotas_cli = AppGroup("quotas", help="Show, set or lift a user's quotas.")


def _show(user_id: str) -> None:
    store = get_store()
    own, usage = store.user_quotas(user_id), store.user_usage(user_id)
    rows = []
    for name in QUOTA_NAMES:
        limit = own.get(name, current_app.config[f"QUOTA_{name.upper()}"])
        source = "this user" if name in own else "default"
        rows.append([name, "none" if limit == 0 else f"{limit:,}", source, f"{usage[name]:,}" if name in usage else ""])
    table(rows, ["QUOTA", "LIMIT", "SET BY", "IN USE"])


@quotas_cli.command("show")
@click.argument("user_id")
@store_command
def show(user_id: str) -> None:
    """A user's quotas and what the user holds now."""
    _show(user_id)


@quotas_cli.command("set")
@click.argument("user_id")
@click.option("--live-sessions", type=click.IntRange(0), help="Live sessions (0: no limit).")
@click.option("--kept-sessions", type=click.IntRange(0), help="Archived sessions (0: no limit).")
@click.option("--messages-per-session", type=click.IntRange(0), help="Messages in one session (0: no limit).")
@click.option("--bytes", "bytes_", type=click.IntRange(0), help="Bytes of messages over all sessions (0: no limit).")
@click.option("--default", "defaults", multiple=True, type=click.Choice(QUOTA_NAMES), help="Back to the default.")
@store_command
def set_quotas(
    user_id: str,
    live_sessions: int | None,
    kept_sessions: int | None,
    messages_per_session: int | None,
    bytes_: int | None,
    defaults: tuple[str, ...],
) -> None:
    """Set a user's own quotas (0 lifts one); --default NAME returns one to the default."""
    given = {
        "live_sessions": live_sessions,
        "kept_sessions": kept_sessions,
        "messages_per_session": messages_per_session,
        "bytes": bytes_,
    }
    values: dict[str, int | None] = {name: value for name, value in given.items() if value is not None}
    values.update(dict.fromkeys(defaults))
    if not values:
        raise click.UsageError("give at least one quota to set, or --default NAME")
    get_store().set_user_quotas(user_id, values)
    _show(user_id)
