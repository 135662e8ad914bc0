"""The Lua scripts in ``scripts/*.lua``, read from package data and named by SHA-1.

A script whose first line is ``--! shard_prelude`` gets ``shard_prelude.lua`` (the shard's
key names, the owner check, the sliding expiry, summaries and index upkeep every script
shares) put in front of it. A part may include another the same way, on a line of its own
(``share_prelude.lua`` starts with ``--! shard_prelude``; the prelude ends with
``--! search_prelude``, which starts with ``--! search_fold``); a file some other file
includes is a part, not a script.

The search index is the engine's part (``search_prelude`` ends with ``--! search_index``):
``search_index.lua`` for the built-in engine, ``search_index_ft.lua`` for the Redis Query
Engine (chatapp/storage/search_engine.py), so each engine has its own set of scripts.
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


BUILT_IN = "built-in"
QUERY_ENGINE = "redis-query-engine"
# Parts an engine puts in place of others, and the scripts that only it runs.
ENGINE_PARTS = {BUILT_IN: {}, QUERY_ENGINE: {"search_index": "search_index_ft"}}
ENGINE_SCRIPTS = {BUILT_IN: {"search_query"}, QUERY_ENGINE: {"search_query_ft"}}


def _expand(name: str, engine: str = BUILT_IN) -> str:
    """The file with each ``--! part`` line replaced by that part (itself expanded), the
    engine's own parts in place of the built-in ones."""
    parts = ENGINE_PARTS[engine]

    def include(found: re.Match[str]) -> str:
        part = found.group(1)
        return _expand(parts.get(part, part), engine).rstrip("\n")

    return INCLUDE.sub(include, _read(name))


@cache
def all_scripts(engine: str = BUILT_IN) -> dict[str, Script]:
    """Every script of an engine by name (the prelude is a part, not a script)."""
    folder = resources.files(__package__).joinpath("scripts")
    names = sorted(p.name.removesuffix(".lua") for p in folder.iterdir() if p.name.endswith(".lua"))
    parts = {found for name in names for found in INCLUDE.findall(_read(name))}
    parts |= {part for variant in ENGINE_PARTS.values() for part in variant.values()}
    others = {name for other, only in ENGINE_SCRIPTS.items() if other != engine for name in only}
    return {name: Script(name, _expand(name, engine)) for name in names if name not in parts | others}
