"""``flask store …``: the storage layout itself (upgrading from layout v1)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from chatapp.cli.output import store_command
from chatapp.storage import get_redis
from chatapp.storage.migrate import Migrator

store_cli = AppGroup("store", help="Upgrade the storage layout.")


@store_cli.command("migrate")
@click.option("--delete-v1", is_flag=True, help="Also delete the v1 keys of every session copied.")
@store_command
def migrate(delete_v1: bool) -> None:
    """Copy every layout-v1 session into layout v2 (safe to repeat, and while the app serves)."""
    migrator = Migrator(get_redis(), current_app.config["SESSION_TIMEOUT"])
    report = migrator.migrate(delete_v1=delete_v1)
    click.echo(
        f"Migrated {report.migrated} session(s) with {report.messages} message(s); "
        f"{report.already} already migrated, {report.expired} expired or gone."
    )
    if delete_v1:
        click.echo(f"Deleted {report.deleted_v1_keys} v1 key(s).")
    elif report.migrated or report.already:
        click.echo("The v1 keys are still there: run again with --delete-v1 to remove them.")
