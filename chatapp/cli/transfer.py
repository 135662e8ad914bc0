"""``flask sessions export`` and ``flask sessions import``: the API's export and import for an operator."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chatapp.cli.output import printable, store_command
from chatapp.cli.sessions import sessions_cli
from chatapp.personas import get_personas
from chatapp.services import exports
from chatapp.services.imports import BadFile, ImportOptions, import_file
from chatapp.storage import get_store
from chatapp.web.auth import new_user_id


@sessions_cli.command("export")
@click.option("--user", "user_id", help="Only this user's sessions (all sessions when left out).")
@click.option("--format", "kind", type=click.Choice(["json", "markdown"]), default="json", show_default=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), help="The file (default: stdout)."
)
@store_command
def export_sessions(user_id: str | None, kind: str, output: Path | None) -> None:
    """Export sessions: one JSON document, or (markdown) a zip of one .md file per session."""
    store = get_store()
    session_ids = store.exportable_ids(user_id)
    if kind == "markdown":
        personas = {persona.id: persona.name for persona in get_personas().values()}
        chunks = exports.zip_export(store, session_ids, None, personas)
    else:
        chunks = exports.json_export(store, session_ids, None)
    if output is None or str(output) == "-":
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    else:
        with output.open("wb") as file:
            for chunk in chunks:
                file.write(chunk)
    click.echo(f"Exported {len(session_ids)} session(s).", err=True)


@sessions_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--user", "user_id", help="Whose sessions they become (a new user_… id when left out).")
@click.option("--persona", default="default", show_default=True, help="For conversations naming no known persona.")
@click.option("--live", is_flag=True, help="Ordinary sessions that expire, instead of archived (kept) ones.")
@store_command
def import_sessions(file: Path, user_id: str | None, persona: str, live: bool) -> None:
    """Import chatapp's export, ChatGPT's conversations.json or Open WebUI's export; prints counts and skips."""
    personas = get_personas()
    if persona not in personas:
        raise click.BadParameter(f"unknown persona {persona!r}; valid: {', '.join(personas)}", param_hint="--persona")
    options = ImportOptions(user_id or new_user_id(), None, persona, set(personas), archived=not live)
    try:
        with file.open("rb") as stream:
            report = import_file(get_store(), stream, options)
    except BadFile as exc:
        raise click.ClickException(exc.message) from None
    for session in report.sessions:
        title = printable(session["title"] or "(untitled)")
        click.echo(f"imported {session['session_id']}  {session['messages']} message(s)  {title}")
    for skipped in report.skipped:
        title = printable(skipped["title"] or "(untitled)")
        click.echo(f"skipped  #{skipped['index']}  {title}: {printable(skipped['reason'])}")
    who = printable(options.user_id)
    click.echo(f"Imported {len(report.sessions)} session(s) for {who}; skipped {len(report.skipped)}.")
