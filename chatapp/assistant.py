"""The assistant's replies."""

from __future__ import annotations

from typing import Any

from flask import Flask

from chatapp.personas import Persona
from chatapp.storage import make_message

OFFLINE_REPLY = (
    "I'm offline: no language model is configured for this chat service, so I can't "
    "answer yet. Your message is saved. To connect a model, an operator sets "
    "CHATAPP_LLM_BASE_URL (any OpenAI-compatible endpoint) and CHATAPP_LLM_MODEL."
)


def offline_reply(persona: Persona) -> dict[str, Any]:
    """A plain reply saying that nothing is connected, and how to connect something."""
    return make_message("assistant", OFFLINE_REPLY, {"offline": True, "persona": persona.id})


def is_configured(app: Flask) -> bool:
    """True when a language model is configured; False means the offline backend answers."""
    return bool(app.config.get("LLM_BASE_URL") and app.config.get("LLM_MODEL"))
