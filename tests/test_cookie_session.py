"""The cookie's signer is built once per secret, not once per request."""

from __future__ import annotations

from chatapp.web.cookie_session import CachedSignerSessionInterface


def test_one_signer_per_secret_and_a_new_one_when_the_secret_changes(make_app):
    app = make_app(REDIS_URL="memory://", SECRET_KEY="s" * 40)
    interface = app.session_interface
    assert isinstance(interface, CachedSignerSessionInterface)

    first = interface.get_signing_serializer(app)
    assert interface.get_signing_serializer(app) is first
    app.secret_key = "t" * 40
    rotated = interface.get_signing_serializer(app)
    assert rotated is not first and rotated.secret_keys[-1] == b"t" * 40

    client = app.test_client()
    client.get("/")  # a visitor's cookie, signed with the current secret, still reads back
    assert client.get("/").status_code == 200
