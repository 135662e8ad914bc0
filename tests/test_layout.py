"""The tree keeps its shape: small modules, Redis only in storage/, Lua only in .lua files."""

from __future__ import annotations

import ast

import pytest

from chatapp.settings import PACKAGE_ROOT

MODULES = sorted(PACKAGE_ROOT.rglob("*.py"))
MAX_LINES = 400


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE_ROOT)))
def test_no_module_is_over_400_lines(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_LINES


def test_only_storage_imports_redis():
    importers = {str(p.relative_to(PACKAGE_ROOT)) for p in MODULES if {"redis", "fakeredis"} & _imports(p)}

    assert importers, "the storage package must still speak Redis"
    assert all(name.startswith("storage/") for name in importers), importers


def test_lua_lives_in_lua_files():
    for path in MODULES:
        source = path.read_text(encoding="utf-8")
        assert "redis.call(" not in source, f"{path} holds Lua; put it in storage/scripts/*.lua"
    assert len(list((PACKAGE_ROOT / "storage" / "scripts").glob("*.lua"))) >= 10
