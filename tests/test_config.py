"""Configuration layers, start-up checks, the personas file and the embedded store."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from chatapp import create_app
from chatapp.personas import load_personas
from chatapp.settings import PROJECT_ROOT, ConfigError
from tests.helpers import OPERATOR_KEY
from tests.servers import free_port

GOOD_PERSONA = {
    "name": "Default Assistant",
    "description": "General help.",
    "system_prompt": "You are helpful.",
    "greeting": "Hello!",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Start every test from the built-in defaults, whatever the shell exported."""
    for name in [n for n in __import__("os").environ if n.startswith("CHATAPP_")]:
        monkeypatch.delenv(name)


def test_defaults_come_from_config_py_and_mean_the_embedded_store(caplog, make_app):
    with caplog.at_level(logging.WARNING):
        app = make_app.plain()

    assert app.config["SESSION_TIMEOUT"] == 3600
    assert app.config["REDIS_URL"] == "memory://"
    assert "every session is lost when this process stops" in caplog.text


def test_environment_overrides_config_file_and_test_config_overrides_both(monkeypatch, make_app):
    monkeypatch.setenv("CHATAPP_SESSION_TIMEOUT", "120")
    monkeypatch.setenv("CHATAPP_API_KEYS", "k1,k2")

    from_env = make_app.plain({"TESTING": True})
    from_test = make_app.plain({"TESTING": True, "SESSION_TIMEOUT": 5})

    assert from_env.config["SESSION_TIMEOUT"] == 120
    assert from_env.config["API_KEYS"] == "k1,k2"
    assert from_test.config["SESSION_TIMEOUT"] == 5


def test_embedded_store_works_end_to_end_and_each_app_has_its_own(memory_app, make_app):
    other = make_app(REDIS_URL="memory://")
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    client = memory_app.test_client()

    sid = client.post("/api/session/create", json={"user_id": "a"}, headers=headers).get_json()["session_id"]
    reply = client.post(f"/api/sessions/{sid}/messages", json={"content": "hi"}, headers=headers)

    assert reply.status_code == 201
    assert client.get("/api/sessions", headers=headers).get_json()["count"] == 1
    assert other.test_client().get("/api/sessions", headers=headers).get_json()["count"] == 0
    assert client.get("/health", headers=headers).get_json()["store"] == "memory"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"ENV": "production", "SECRET_KEY": "s" * 40}, "CHATAPP_REDIS_URL is required"),
        ({"ENV": "production", "SECRET_KEY": "s" * 40, "REDIS_URL": "memory://"}, "production needs a real Redis"),
        ({"ENV": "production", "REDIS_URL": "redis://127.0.0.1:1/0"}, "CHATAPP_SECRET_KEY"),
        ({"SESSION_TIMEOUT": 0}, "SESSION_TIMEOUT"),
        ({"SESSION_TIMEOUT": "soon"}, "SESSION_TIMEOUT"),
    ],
)
def test_unsafe_configuration_stops_the_app_with_a_clear_message(config, message):
    with pytest.raises(ConfigError, match=message):
        create_app({"TESTING": True, **config})


def test_production_accepts_a_real_redis_and_secret(make_app):
    app = make_app.plain({"ENV": "production", "REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "s" * 40})

    assert app.config["REDIS_URL"] == "redis://127.0.0.1:1/0"


def test_redis_down_gives_503_json_on_health_and_api(make_app):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}

    health = client.get("/health", headers=headers)
    listing = client.get("/api/sessions", headers=headers)
    create = client.post("/api/session/create", json={}, headers=headers)

    assert health.status_code == 503
    assert health.get_json()["status"] == "unavailable"
    assert "ConnectionError" in health.get_json()["redis"]
    for response in (listing, create):
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == 503


# --- personas file ---------------------------------------------------------------------------


def write_personas(tmp_path: Path, data) -> Path:
    path = tmp_path / "personas.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def test_shipped_personas_file_is_valid_and_has_the_guides_four():
    personas = load_personas(PROJECT_ROOT / "config" / "personas.yaml")

    assert list(personas) == ["default", "mental_health_nurse", "technical_support", "creative_writer"]
    assert all(p.system_prompt and p.greeting and p.description for p in personas.values())


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"default": {**GOOD_PERSONA, "greeting": ""}}, "persona 'default': field 'greeting'"),
        ({"default": GOOD_PERSONA, "nurse": {"name": "Nurse"}}, "persona 'nurse': field 'description'"),
        ({"default": {**GOOD_PERSONA, "temperature": 7}}, "persona 'default': field 'temperature'"),
        ({"default": {**GOOD_PERSONA, "colour": "red"}}, "persona 'default': field 'colour'"),
        ({"default": "just text"}, "persona 'default' must be a mapping"),
        ({"bad id!": GOOD_PERSONA}, "persona id 'bad id!'"),
        ({"writer": GOOD_PERSONA}, "'default' is required"),
        ("[unclosed", "not valid YAML"),
        ("", "expected a mapping"),
    ],
)
def test_bad_personas_file_names_the_entry_and_field(tmp_path, data, expected):
    path = write_personas(tmp_path, data)

    with pytest.raises(ConfigError, match=expected.replace("(", r"\(")) as caught:
        load_personas(path)

    assert str(path) in str(caught.value)


def test_app_refuses_to_start_with_a_bad_personas_file(tmp_path, make_app):
    path = write_personas(tmp_path, {"default": {**GOOD_PERSONA, "system_prompt": ""}})

    with pytest.raises(ConfigError, match="field 'system_prompt'"):
        make_app(REDIS_URL="memory://", PERSONAS_FILE=str(path))


def test_missing_personas_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="cannot read personas file"):
        load_personas(tmp_path / "absent.yaml")
