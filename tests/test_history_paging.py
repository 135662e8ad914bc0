"""The guide's history call keeps its shape but pages: the newest 200, and next_before for older ones."""

from __future__ import annotations

from chatapp.storage import get_store, make_message


def test_history_answers_the_newest_200_and_pages_back_with_next_before(app, api):
    sid = api.create(user_id="Long Talker")["session_id"]
    with app.app_context():
        store = get_store()
        for start in range(0, 450, 150):
            store.append_messages(sid, [make_message("user", f"m{i}") for i in range(start, start + 150)])

    first = api.client.get("/api/session/Long Talker/history").get_json()

    assert set(first) == {"user_id", "session_id", "message_count", "messages", "next_before"}
    assert first["message_count"] == 450 and len(first["messages"]) == 200
    assert first["messages"][0]["content"] == "m250" and first["messages"][-1]["content"] == "m449"
    assert first["next_before"] == 250
    older = api.client.get(f"/api/session/{sid}/history", query_string={"before": 250, "limit": 300}).get_json()
    assert [m["content"] for m in older["messages"]] == [f"m{i}" for i in range(250)]
    assert older["next_before"] is None
    assert api.client.get(f"/api/session/{sid}/history?limit=0").status_code == 422
