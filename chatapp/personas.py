"""Assistant personas from config/personas.yaml, validated once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from flask import Flask, current_app
from marshmallow import ValidationError

from chatapp.schemas.personas import persona_file_entry_schema
from chatapp.settings import ConfigError


@dataclass(frozen=True)
class Persona:
    id: str
    name: str
    description: str
    system_prompt: str
    greeting: str
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


def load_personas(path: str | Path) -> dict[str, Persona]:
    """Read and validate a personas file; ConfigError names the bad entry and field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read personas file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: expected a mapping of persona id to its settings")
    personas: dict[str, Persona] = {}
    for persona_id, entry in raw.items():
        if not isinstance(persona_id, str) or not _is_valid_id(persona_id):
            raise ConfigError(f"{path}: persona id {persona_id!r} must be 1-64 ASCII letters, digits or _")
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: persona '{persona_id}' must be a mapping of fields")
        try:
            fields = persona_file_entry_schema.load(entry)
        except ValidationError as exc:
            problems = "; ".join(
                f"field '{field}': {' '.join(map(str, messages))}"
                for field, messages in sorted(exc.normalized_messages().items())
            )
            raise ConfigError(f"{path}: persona '{persona_id}': {problems}") from exc
        personas[persona_id] = Persona(id=persona_id, **fields)
    if "default" not in personas:
        raise ConfigError(f"{path}: a persona with id 'default' is required (new sessions use it)")
    return personas


def _is_valid_id(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isascii() and (c.isalnum() or c == "_") for c in value)


def init_app(app: Flask) -> None:
    """Load the personas into app.extensions so a bad file stops the app at start."""
    app.extensions["personas"] = load_personas(app.config["PERSONAS_FILE"])


def get_personas() -> dict[str, Persona]:
    return current_app.extensions["personas"]


def persona_of(session: dict[str, Any]) -> Persona:
    """A session's persona; the default one if its persona left the file since it was created."""
    personas = get_personas()
    return personas.get(session["persona"]) or personas["default"]
