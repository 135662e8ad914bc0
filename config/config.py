"""Deployment settings read at start-up, after the built-in defaults.

Lower- or upper-case names both work; every public name becomes an app config key.
Environment variables prefixed ``CHATAPP_`` override anything set here.
"""

# Seconds of inactivity after which a session and its history expire (sliding).
session_timeout = 3600  # seconds (1 hour)
