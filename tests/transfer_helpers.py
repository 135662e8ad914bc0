"""What the export and import tests share: the fixture files, a full dump of what Redis holds, and
the calls they repeat."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import redis
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CHATGPT = FIXTURES / "chatgpt_conversations.json"
OPEN_WEBUI = FIXTURES / "openwebui_export.json"
LIMITER_PREFIX = "chatapp:ratelimit"  # the rate limiter's counters: a refused request still counts


def key_dump(client: redis.Redis | Any) -> dict[str, tuple[str, bytes | None, bool]]:
    """Every key Redis holds (the rate limiter's counters aside): its type, its serialized value
    (DUMP) and whether it expires. Two equal dumps mean Redis holds exactly the same data."""
    keys = client.keys("*")
    found = {}
    for key in keys:
        name = key.decode() if isinstance(key, bytes) else key
        if name.startswith(LIMITER_PREFIX):
            continue
        found[name] = (client.type(key), client.dump(key), client.pttl(key) > 0)
    return found


def post_import(client: FlaskClient, data: bytes, multipart: bool = False, **query: Any) -> TestResponse:
    headers = dict(query.pop("headers", {}) or {})
    if multipart:
        form = {"file": (io.BytesIO(data), "conversations.json"), **{k: str(v) for k, v in query.items()}}
        return client.post("/api/import", data=form, content_type="multipart/form-data", headers=headers)
    return client.post("/api/import", data=data, content_type="application/json", query_string=query, headers=headers)


def export_json(client: FlaskClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/export", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return json.loads(response.get_data())


def without_ids(document: dict[str, Any]) -> dict[str, Any]:
    """An export less what a re-import changes by design: the export's time and the session ids."""
    sessions = [{k: v for k, v in s.items() if k != "session_id"} for s in document["sessions"]]
    rest = {k: v for k, v in document.items() if k not in ("exported_at", "sessions")}
    return {**rest, "sessions": sessions}
