"""Who is asking: the principal every API view acts for."""

from __future__ import annotations

import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """A visitor owns its sessions; an operator (owner None) acts for any user."""

    user_id: str | None
    is_operator: bool

    @property
    def owner(self) -> str | None:
        """The user id storage must restrict to, or None for everyone's sessions."""
        return None if self.is_operator else self.user_id


def new_user_id() -> str:
    """An unguessable visitor id in the guide's ``user_…`` shape."""
    return f"user_{secrets.token_urlsafe(12)}"


def current_principal() -> Principal:
    """Until access control lands, every caller is an operator (the guide's behaviour)."""
    return Principal(user_id=None, is_operator=True)
