"""The Lua scripts in ``scripts/*.lua``, read from package data and named by SHA-1.

A script whose first line is ``--! shard_prelude`` gets ``shard_prelude.lua`` (the shard's
key names, the owner check, the sliding expiry, summaries and index upkeep every script
shares) put in front of it. A prelude may start with such a line itself
(``share_prelude.lua`` builds on ``shard_prelude.lua``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

INCLUDE = "--! "


@dataclass(frozen=True)
class Script:
    name: str
    source: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


def _read(name: str) -> str:
    return resources.files(__package__).joinpath("scripts", f"{name}.lua").read_text(encoding="utf-8")


def _expand(name: str) -> str:
    source = _read(name)
    first, _, _ = source.partition("\n")
    if first.startswith(INCLUDE):
        source = _expand(first[len(INCLUDE) :].strip()) + source
    return source


@cache
def all_scripts() -> dict[str, Script]:
    """Every script by name (the prelude is a part, not a script)."""
    folder = resources.files(__package__).joinpath("scripts")
    names = sorted(p.name.removesuffix(".lua") for p in folder.iterdir() if p.name.endswith(".lua"))
    return {name: Script(name, _expand(name)) for name in names if not name.endswith("_prelude")}
