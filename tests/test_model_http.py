"""The model server's HTTP client: addresses resolved once, errors that say what they are."""

from __future__ import annotations

import socket

import pytest

from chatapp import model_http
from tests.fake_llm import FakeLLM


def test_an_ip_is_never_resolved_and_a_name_once_a_minute(monkeypatch):
    asked: list[str] = []

    def getaddrinfo(host, port, **_):
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(model_http.socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(model_http, "_addresses", {})

    assert model_http._resolved("127.0.0.1", 80) == (socket.AF_INET, ("127.0.0.1", 80))
    assert model_http._resolved("[::1]", 80) == (socket.AF_INET6, ("::1", 80))
    for _ in range(3):
        assert model_http._resolved("model.internal", 8000) == (socket.AF_INET, ("127.0.0.1", 8000))
    assert asked == ["model.internal"]


def test_a_stream_and_the_errors_of_a_real_server():
    with FakeLLM() as fake:
        stream = model_http.post_stream(fake.base_url, "k", 5, {"model": "m", "messages": [], "stream": True})
        body = b"".join(stream.iter_bytes())
        stream.close()
        stream.close()  # safe twice
        assert stream.status == 200 and b"[DONE]" in body

        fake.reset("fail", status=429, headers={"Retry-After": "7"})
        with pytest.raises(model_http.ModelHTTPError) as refused:
            model_http.post_stream(fake.base_url, "k", 5, {"model": "m", "messages": []})
        assert refused.value.status_code == 429 and refused.value.headers["retry-after"] == "7"
        assert refused.value.body["error"]

        closed_port = fake.port
    with pytest.raises(model_http.ModelUnreachable):
        model_http.post_stream(f"http://127.0.0.1:{closed_port}/v1", "k", 5, {"model": "m"})
