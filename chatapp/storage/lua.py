"""The Lua scripts in ``scripts/*.lua``, read from package data and named by SHA-1.

A script whose first line is ``--! shard_prelude`` gets ``shard_prelude.lua`` (the shard's
key names, the owner check, the sliding expiry, summaries and index upkeep every script
shares) put in front of it. A part may include another the same way, on a line of its own
(``share_prelude.lua`` starts with ``--! shard_prelude``; the prelude ends with
``--! search_prelude``, which starts with ``--! search_fold``); a file some other file
includes is a part, not a script.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

INCLUDE = re.compile(r"^--! (\w+)$", re.MULTILINE)


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
    """The file with each ``--! part`` line replaced by that part (itself expanded)."""
    return INCLUDE.sub(lambda found: _expand(found.group(1)).rstrip("\n"), _read(name))


@cache
def all_scripts() -> dict[str, Script]:
    """Every script by name (the prelude is a part, not a script)."""
    folder = resources.files(__package__).joinpath("scripts")
    names = sorted(p.name.removesuffix(".lua") for p in folder.iterdir() if p.name.endswith(".lua"))
    parts = {found for name in names for found in INCLUDE.findall(_read(name))}
    return {name: Script(name, _expand(name)) for name in names if name not in parts}
