"""Every reply of a process shares one client per model server (chatapp.upstream.client).

Building an openai client costs ~30 ms of CPU (a new SSL context with the CA certificates
loaded, whatever the URL): once per reply, a thousand replies at once would wait seconds for it.
"""

from __future__ import annotations

import openai

from chatapp import upstream
from tests.fake_llm import FakeLLM
from tests.helpers import OPERATOR_KEY


def test_replies_share_one_client_and_leave_it_open(make_app, monkeypatch):
    built = []

    class Counted(openai.OpenAI):
        def __init__(self, **options):
            built.append(options["base_url"])
            super().__init__(**options)

    monkeypatch.setattr(upstream.openai, "OpenAI", Counted)
    with FakeLLM() as fake:  # a new server: a URL no client was built for yet
        app = make_app(REDIS_URL="memory://", LLM_BASE_URL=fake.base_url, LLM_MODEL="m", LLM_TIMEOUT=5)
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
        sid = client.post("/api/session/create", json={"user_id": "u"}).get_json()["session_id"]
        replies = [client.post(f"/api/sessions/{sid}/messages", json={"content": f"Hi {n}"}) for n in range(3)]
        streamed = client.post(
            f"/api/sessions/{sid}/messages", json={"content": "Hi"}, headers={"Accept": "text/event-stream"}
        ).get_data(as_text=True)

    assert [r.status_code for r in replies] == [201, 201, 201]
    assert all(r.get_json()["assistant_message"]["content"] == fake.reply for r in replies)
    assert "event: done" in streamed
    assert built == [fake.base_url]


def test_different_settings_get_different_clients():
    one = upstream.client("http://127.0.0.1:9/v1", "k", 5.0)

    assert upstream.client("http://127.0.0.1:9/v1", "k", 5.0) is one
    assert upstream.client("http://127.0.0.1:9/v1", "k", 6.0) is not one
    assert upstream.client("http://127.0.0.1:8/v1", "k", 5.0) is not one
    assert one.timeout == openai.Timeout(5.0, connect=5.0) and one.max_retries == 0
