"""What a worker process keeps for itself on the app, built again in a forked child (its
threads did not come along)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from flask import Flask

Kept = TypeVar("Kept")


def per_worker(app: Flask, name: str, build: Callable[[Flask], Kept]) -> Kept:
    """``app.extensions[name]``, built by ``build(app)`` in this process the first time."""
    kept = app.extensions.get(name)
    if kept is None or kept[0] != os.getpid():
        kept = app.extensions[name] = (os.getpid(), build(app))
    return kept[1]
