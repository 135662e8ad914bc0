"""WSGI entry point: ``gunicorn wsgi:app`` or ``flask --app wsgi run``."""

import sys

from chatapp import create_app
from chatapp.settings import ConfigError

try:
    app = create_app()
except ConfigError as exc:  # a bad setting or personas file: one clear line, not a traceback
    print(f"chatapp: configuration error: {exc}", file=sys.stderr)
    # 3 is gunicorn's "worker failed to boot": the master stops instead of respawning forever.
    raise SystemExit(3) from None
