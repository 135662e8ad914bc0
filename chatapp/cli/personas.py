"""``flask personas …``: show and validate the assistant personas."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from chatapp.cli.output import echo_json, table
from chatapp.personas import get_personas, load_personas
from chatapp.schemas import persona_list_schema
from chatapp.settings import ConfigError

personas_cli = AppGroup("personas", help="Show and validate the assistant personas.")


@personas_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="The API's JSON instead of a table.")
def list_personas(as_json: bool) -> None:
    """The personas this app was started with."""
    personas = list(get_personas().values())
    if as_json:
        echo_json(persona_list_schema.dump({"personas": [vars(p) for p in personas], "count": len(personas)}))
        return
    table([[p.id, p.name, p.description] for p in personas], ["ID", "NAME", "DESCRIPTION"])


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
