"""``flask search …``: the search index."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from chatapp.cli.output import store_command
from chatapp.storage import get_store

search_cli = AppGroup("search", help="Maintain the search index.")


@search_cli.command("reindex")
@click.option("--restart", is_flag=True, help="Start over instead of going on from where a stopped run was.")
@store_command
def reindex(restart: bool) -> None:
    """Index every stored session afresh: for data stored before the index existed.

    Safe to repeat and while the app serves (writes keep the index themselves). It walks each
    shard's sessions with HSCAN and keeps its cursor in Redis, so a run that stopped goes on
    where it was."""

    def progress(shard: int, done: int) -> None:
        click.echo(f"shard {shard + 1}/12 done, {done} session(s) so far", err=True)

    done = get_store().reindex(restart=restart, progress=progress)
    click.echo(f"Indexed {done} session(s).")
